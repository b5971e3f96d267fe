"""The TAO-style launcher: plugin discovery, the mounts file, path translation, Docker and local runners.

Standard library only at import time (the docker SDK is imported when a container is about to run), so
``tao --help`` stays fast and never imports torch.
"""


class LauncherError(Exception):
    """A problem the user can fix; the message says how. Exit code 2 unless said otherwise."""

    exit_code = 2
