"""``tao``: a TAO-style launcher that discovers task plugins through entry points.

This release runs actions in the current Python environment (``tao model <task> <action> ...``); the Docker
runner, mounts file and path translation come with the launcher issue. Importing this module never imports
torch: plugins are plain data and handlers are imported only when an action runs.
"""

import importlib
import sys
from importlib.metadata import entry_points

import click

GROUP = "tao_launcher.plugins"


def discover() -> dict:
    plugins = {}
    for ep in entry_points(group=GROUP):
        try:
            plugins[ep.name] = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, not fatal
            click.echo(f"warning: plugin {ep.name} ({ep.value}) failed to load: {exc}; skipped", err=True)
    return plugins


def _usage(plugins: dict) -> str:
    lines = ["usage: tao model <task> <action> [args ...]", "", "tasks:"]
    lines += [f"  {name:<22} {p.get('summary', '')}" for name, p in sorted(plugins.items())]
    lines += ["", "example:", "  tao model optical_inspection train -e specs/train.yaml train.num_epochs=20"]
    return "\n".join(lines)


def main(argv=None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    plugins = discover()
    if not args or args[0] in ("-h", "--help") or args[0] != "model" or len(args) < 2:
        click.echo(_usage(plugins))
        sys.exit(0 if not args or args[0] in ("-h", "--help") else 2)
    task = args[1]
    if task not in plugins:
        click.echo(f"error: unknown task '{task}'; installed: {', '.join(sorted(plugins)) or 'none'}", err=True)
        sys.exit(2)
    plugin, rest = plugins[task], args[2:]
    if not rest or rest[0] in ("-h", "--help"):
        click.echo(f"usage: tao model {task} <action> [args ...]\n\nactions:")
        for action, meta in plugin["actions"].items():
            click.echo(f"  {action:<18} {meta['help']}")
        first = next(iter(plugin["actions"]))
        click.echo(f"\nexample:\n  tao model {task} {first} -e spec.yaml [key=value ...]")
        sys.exit(0)
    if rest[0] not in plugin["actions"]:
        click.echo(f"error: {task} has no action '{rest[0]}'; choose one of {', '.join(plugin['actions'])}", err=True)
        sys.exit(2)
    module_name, func = plugin["actions"][rest[0]]["handler"].split(":")
    sys.exit(getattr(importlib.import_module(module_name), func)(rest))


if __name__ == "__main__":
    main()
