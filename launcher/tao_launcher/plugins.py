"""Plugin discovery through the ``tao_launcher.plugins`` entry-point group (see protocol.py).

A plugin that fails to import or to follow the protocol is reported once and skipped, as is one of another
protocol major version and one whose declared name is not its entry point's; two distributions declaring the
same plugin name are refused, naming both.
``TAO_LAUNCHER_PLUGINS=name,name`` restricts discovery to those plugins (the others are never imported).
"""

import importlib
import os
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points

from tao_launcher import LauncherError
from tao_launcher.protocol import GROUP, PROTOCOL_VERSION, PluginSpec, ProtocolError, major, parse

ONLY_ENV = "TAO_LAUNCHER_PLUGINS"


@dataclass(frozen=True)
class Plugin:
    name: str
    distribution: str
    spec: PluginSpec

    @property
    def actions(self) -> list[str]:
        return self.spec.action_names

    def load(self, target: str):
        """The function a ``module:function`` field of the spec names (handler, schema), imported now."""
        module, function = target.split(":", 1)
        return getattr(importlib.import_module(module), function)


def _distribution(ep) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.metadata['Name']} {dist.version}" if dist is not None else ep.value


def wanted() -> set[str] | None:
    """The plugin names ``TAO_LAUNCHER_PLUGINS`` allows, or None for all."""
    value = os.environ.get(ONLY_ENV, "").strip()
    return {name.strip() for name in value.split(",") if name.strip()} if value else None


def discover(group: str = GROUP, warn=None) -> dict[str, Plugin]:
    """Installed plugins by name. ``warn(message)`` hears about skipped ones (default: stderr)."""
    warn = warn or (lambda message: print(f"warning: {message}", file=sys.stderr))
    only = wanted()
    found: dict[str, Plugin] = {}
    for ep in entry_points(group=group):
        if only is not None and ep.name not in only:
            continue
        dist = _distribution(ep)
        try:
            spec = parse(ep.load())
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the launcher
            kind = "" if isinstance(exc, ProtocolError) else f"{type(exc).__name__}: "
            warn(f"plugin '{ep.name}' from {dist} cannot be loaded ({kind}{exc}); skipped")
            continue
        if spec.name != ep.name:
            warn(
                f"plugin '{ep.name}' from {dist} declares the name '{spec.name}'; skipped (the entry point's name "
                "and PluginSpec.name must be the same)"
            )
            continue
        if major(spec.protocol) != major(PROTOCOL_VERSION):
            warn(
                f"plugin '{ep.name}' from {dist} speaks protocol {spec.protocol}, this launcher {PROTOCOL_VERSION}; "
                "skipped (install a launcher of its major version)"
            )
            continue
        if ep.name in found and found[ep.name].distribution != dist:
            raise LauncherError(
                f"two installed distributions declare the plugin '{ep.name}': "
                f"{found[ep.name].distribution} and {dist}; uninstall one of them"
            )
        found[ep.name] = Plugin(ep.name, dist, spec)
    return found
