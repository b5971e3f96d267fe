"""Console-script modules. Keep them light: no torch at import time (tested)."""
