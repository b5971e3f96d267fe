"""The TAO-style launcher: plugin discovery, the mounts file, path translation, Docker and local runners.

A product of its own: it imports no model code. Standard library only at import time (the docker SDK is
imported when a container is about to run, PyYAML when a spec is translated), so ``tao --help`` stays fast.
"""

__version__ = "0.1.0"


class LauncherError(Exception):
    """A problem the user can fix; the message says how. Exit code 2 unless said otherwise."""

    exit_code = 2
