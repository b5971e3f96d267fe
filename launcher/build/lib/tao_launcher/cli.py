"""``tao``: a TAO-style launcher for every plugin installed in the ``tao_launcher.plugins`` entry-point group.

    tao [--local] [--dry-run] [--image IMAGE] [--debug] model <task> <action> [args ...]
    tao mounts validate [FILE]

Actions run in a one-shot Docker container by default (mounts, env and Docker options from the mounts file;
host paths translated), or in this Python environment with ``--local`` (or ``TAO_LAUNCHER_LOCAL=1``, or
``TAO_DOCKER_DISABLE=1`` as NVIDIA's launcher reads it).
Importing this module never imports torch: plugins are plain data, handlers load only when an action runs.
"""

import difflib
import os
import sys
import traceback

USAGE = """usage: tao [--local] [--dry-run] [--image IMAGE] [--debug] model <task> <action> [args ...]
       tao plugins
       tao info [--verbose]                       (launcher, plugins, their images, the mounts file)
       tao list                                   (the task containers running now)
       tao stop --container_id ID [ID ...] | --all
       tao serve --data-root DIR [--port 8000] [--airgapped]   (the TAO-API job service; tao serve --help)
       tao mounts validate [FILE]
       tao --version

options:
  --local          run in this Python environment instead of a Docker container (or TAO_LAUNCHER_LOCAL=1,
                   or TAO_DOCKER_DISABLE=1 as with NVIDIA's launcher)
  --dry-run        print the equivalent `docker run` command line and exit
  --image IMAGE    container image (default: the plugin's, or TAO_<TASK>_IMAGE)
  --debug          show tracebacks

mounts file: $LAUNCHER_MOUNTS, else ~/.tao_mounts.json (Mounts, Envs, DockerOptions)
plugins: every one installed in the tao_launcher.plugins entry-point group, or those named in
         TAO_LAUNCHER_PLUGINS=name,name
"""


def _task_list(plugins) -> str:
    lines = ["tasks (installed plugins):"]
    lines += [f"  {name:<22} {p.spec.summary}" for name, p in sorted(plugins.items())]
    if plugins:
        plugin = plugins[sorted(plugins)[0]]
        lines += ["", "example:", f"  tao model {plugin.name} {plugin.actions[0]} --help"]
    return "\n".join(lines)


def _action_list(plugin) -> str:
    lines = [f"usage: tao model {plugin.name} <action> [args ...]   ({plugin.distribution})", "", "actions:"]
    lines += [f"  {action.name:<18} {action.help}" for action in plugin.spec.actions]
    example = next((a.example for a in plugin.spec.actions if a.example), "")
    lines += ["", "example:", f"  tao model {plugin.name} {example.split(' ', 1)[1] if example else plugin.actions[0]}"]
    return "\n".join(lines)


def _plugin_table(plugins) -> str:
    rows = [("name", "version", "distribution", "image", "protocol")]
    rows += [
        (p.name, p.spec.version, p.distribution, p.spec.image, p.spec.protocol) for _, p in sorted(plugins.items())
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def _unknown(kind: str, name: str, known) -> str:
    near = difflib.get_close_matches(name, list(known), n=1)
    hint = f"did you mean {near[0]}?" if near else f"choose one of {', '.join(known) or 'none'}"
    return f"unknown {kind} '{name}'; {hint}"


def _parse_flags(args: list[str]) -> tuple[dict, list[str]]:
    flags: dict[str, bool | str | None] = {
        # TAO_DOCKER_DISABLE=1 is how NVIDIA's launcher is told to run without Docker: honoured the same way.
        "local": os.environ.get("TAO_LAUNCHER_LOCAL") == "1" or os.environ.get("TAO_DOCKER_DISABLE") == "1",
        "dry_run": False,
        "image": None,
        "debug": False,
    }
    while args and args[0].startswith("--"):
        flag = args.pop(0)
        if flag == "--local":
            flags["local"] = True
        elif flag == "--dry-run":
            flags["dry_run"] = True
        elif flag == "--debug":
            flags["debug"] = True
        elif flag == "--image" and args:
            flags["image"] = args.pop(0)
        elif flag == "--version":
            flags["version"] = True
        elif flag == "--help":
            args.insert(0, "--help")
            break
        else:
            raise SystemExit(f"error: unknown option {flag}\n{USAGE}")
    return flags, args


def dispatch(args: list[str], flags: dict) -> int:
    from tao_launcher import LauncherError
    from tao_launcher.plugins import discover

    if args[:1] in (["mounts"], ["plugins"]) and "--version" in args:
        flags["version"] = True
        args = []
    if args[:1] == ["serve"]:
        from tao_launcher.service.serve import main as serve

        return serve(args[1:])
    if args[:2] == ["mounts", "validate"]:
        from pathlib import Path

        from tao_launcher.mounts import load_mounts, mounts_path

        path = Path(args[2]) if len(args) > 2 else mounts_path()[0]
        config = load_mounts(path)
        print(
            f"{path}: valid ({len(config.mounts)} mounts, {len(config.envs)} env variables, "
            f"Docker options: {', '.join(config.options) or 'none'})"
        )
        return 0
    plugins = discover()
    if flags.get("version"):
        from tao_launcher import __version__
        from tao_launcher.protocol import PROTOCOL_VERSION

        print(f"tao launcher {__version__} (plugin protocol {PROTOCOL_VERSION})")
        for name, plugin in sorted(plugins.items()):
            print(f"  {name}: {plugin.distribution}")
        return 0
    if args[:1] == ["plugins"]:
        print(_plugin_table(plugins))
        return 0
    if args[:1] in (["info"], ["list"], ["stop"]):
        return _instances(args, plugins)
    if not args or args[0] in ("-h", "--help") or args[0] != "model" or len(args) < 2 or args[1] in ("-h", "--help"):
        print(USAGE + "\n" + _task_list(plugins))
        return 0 if not args or args[0] in ("-h", "--help") or args[1:2] in (["-h"], ["--help"]) else 2
    task, rest = args[1], args[2:]
    if task not in plugins:
        raise LauncherError(_unknown("task", task, sorted(plugins)))
    plugin = plugins[task]
    if rest[:1] == ["--version"]:
        print(f"{plugin.name} {plugin.spec.version} ({plugin.distribution}, image {plugin.spec.image})")
        return 0
    if not rest or rest[0] in ("-h", "--help"):
        print(_action_list(plugin))
        return 0
    if rest[0] not in plugin.actions:
        raise LauncherError(f"{task}: " + _unknown("action", rest[0], plugin.actions))
    if flags["local"] or any(arg in ("-h", "--help", "--version") for arg in rest[1:]):  # needs no container
        from tao_launcher.launch import run_local

        return run_local(plugin, rest)
    from tao_launcher.launch import run_docker

    return run_docker(plugin, rest, image=flags["image"], dry_run=flags["dry_run"])


def _instances(args: list[str], plugins) -> int:
    """NVIDIA's launcher's instance commands: info, list, stop (its options spelt as it spells them)."""
    from tao_launcher import LauncherError, instances

    command, rest = args[0], args[1:]
    if command == "info":
        return instances.info(plugins, verbose="--verbose" in rest)
    if command == "list":
        return instances.list_runs()
    ids: list[str] = []
    stop_all = False
    options = iter(rest)
    for option in options:
        if option == "--all":
            stop_all = True
        elif option == "--container_id":
            ids += [value for value in options]  # nargs='+': every word after it
        else:
            raise LauncherError(f"tao stop: unknown option {option}; use --container_id ID [ID ...] or --all")
    return instances.stop_runs(ids, stop_all)


def main(argv=None) -> None:
    flags, args = _parse_flags(list(sys.argv[1:] if argv is None else argv))
    try:
        code = dispatch(args, flags)
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:  # noqa: BLE001 - the CLI edge: one line, traceback only with --debug
        from tao_launcher import LauncherError

        if flags["debug"]:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        code = exc.exit_code if isinstance(exc, LauncherError) else 1
    sys.exit(code)


if __name__ == "__main__":
    main()
