"""tao_siamese_oi: an open re-implementation of TAO's SiameseOI optical-inspection model.

Importing the package is cheap on purpose (no torch): the CLI and the launcher plugin import it at start-up.
"""

__version__ = "0.1.0"
