"""Plugin discovery through the ``tao_launcher.plugins`` entry-point group.

A plugin is plain data (see ``tao_siamese_oi.plugin``). One that fails to import is reported once and skipped;
two distributions declaring the same plugin name are refused, naming both.
"""

import sys
from dataclasses import dataclass
from importlib.metadata import entry_points

from tao_siamese_oi.launcher import LauncherError

GROUP = "tao_launcher.plugins"
REQUIRED_KEYS = ("name", "actions", "argv_prefix")


@dataclass(frozen=True)
class Plugin:
    name: str
    distribution: str
    data: dict

    @property
    def actions(self) -> dict:
        return self.data["actions"]


def _distribution(ep) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.metadata['Name']} {dist.version}" if dist is not None else ep.value


def discover(group: str = GROUP, warn=None) -> dict[str, Plugin]:
    """Installed plugins by name. ``warn(message)`` hears about broken ones (default: stderr)."""
    warn = warn or (lambda message: print(f"warning: {message}", file=sys.stderr))
    found: dict[str, Plugin] = {}
    for ep in entry_points(group=group):
        dist = _distribution(ep)
        try:
            data = ep.load()
            missing = [k for k in REQUIRED_KEYS if k not in data]
            if missing:
                raise ValueError(f"its declaration lacks {', '.join(missing)}")
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the launcher
            warn(f"plugin '{ep.name}' from {dist} cannot be loaded ({type(exc).__name__}: {exc}); skipped")
            continue
        if ep.name in found and found[ep.name].distribution != dist:
            raise LauncherError(
                f"two installed distributions declare the plugin '{ep.name}': "
                f"{found[ep.name].distribution} and {dist}; uninstall one of them"
            )
        found[ep.name] = Plugin(ep.name, dist, data)
    return found
