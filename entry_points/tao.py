"""``tao``: a TAO-style launcher for every plugin installed in the ``tao_launcher.plugins`` entry-point group.

    tao [--local] [--dry-run] [--image IMAGE] [--debug] model <task> <action> [args ...]
    tao mounts validate [FILE]

Actions run in a one-shot Docker container by default (mounts, env and Docker options from the mounts file;
host paths translated), or in this Python environment with ``--local`` (or ``TAO_LAUNCHER_LOCAL=1``).
Importing this module never imports torch: plugins are plain data, handlers load only when an action runs.
"""

import os
import sys
import traceback

USAGE = """usage: tao [--local] [--dry-run] [--image IMAGE] [--debug] model <task> <action> [args ...]
       tao mounts validate [FILE]
       tao --version

options:
  --local          run in this Python environment instead of a Docker container (or TAO_LAUNCHER_LOCAL=1)
  --dry-run        print the equivalent `docker run` command line and exit
  --image IMAGE    container image (default: the plugin's, or TAO_<TASK>_IMAGE)
  --debug          show tracebacks

mounts file: $LAUNCHER_MOUNTS, else ~/.tao_mounts.json (Mounts, Envs, DockerOptions)
"""


def _task_list(plugins) -> str:
    lines = ["tasks (installed plugins):"]
    lines += [f"  {name:<22} {p.data.get('summary', '')}" for name, p in sorted(plugins.items())]
    lines += ["", "example:", "  tao model optical_inspection train -e specs/train.yaml train.num_epochs=20"]
    return "\n".join(lines)


def _action_list(plugin) -> str:
    lines = [f"usage: tao model {plugin.name} <action> [args ...]   ({plugin.distribution})", "", "actions:"]
    lines += [f"  {action:<18} {meta['help']}" for action, meta in plugin.actions.items()]
    first = next(iter(plugin.actions))
    lines += ["", "example:", f"  tao model {plugin.name} {first} -e spec.yaml [key=value ...]"]
    return "\n".join(lines)


def _parse_flags(args: list[str]) -> tuple[dict, list[str]]:
    flags = {"local": os.environ.get("TAO_LAUNCHER_LOCAL") == "1", "dry_run": False, "image": None, "debug": False}
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
    from tao_siamese_oi.launcher import LauncherError
    from tao_siamese_oi.launcher.plugins import discover

    if args[:2] == ["mounts", "validate"]:
        from pathlib import Path

        from tao_siamese_oi.launcher.mounts import load_mounts, mounts_path

        path = Path(args[2]) if len(args) > 2 else mounts_path()[0]
        config = load_mounts(path)
        print(
            f"{path}: valid ({len(config.mounts)} mounts, {len(config.envs)} env variables, "
            f"Docker options: {', '.join(config.options) or 'none'})"
        )
        return 0
    plugins = discover()
    if flags.get("version"):
        from tao_siamese_oi import __version__

        print(f"tao launcher {__version__}")
        for name, plugin in sorted(plugins.items()):
            print(f"  {name}: {plugin.distribution}")
        return 0
    if not args or args[0] in ("-h", "--help") or args[0] != "model" or len(args) < 2 or args[1] in ("-h", "--help"):
        print(USAGE + "\n" + _task_list(plugins))
        return 0 if not args or args[0] in ("-h", "--help") or args[1:2] in (["-h"], ["--help"]) else 2
    task, rest = args[1], args[2:]
    if task not in plugins:
        raise LauncherError(f"unknown task '{task}'; installed: {', '.join(sorted(plugins)) or 'none'}")
    plugin = plugins[task]
    if not rest or rest[0] in ("-h", "--help"):
        print(_action_list(plugin))
        return 0
    if rest[0] not in plugin.actions:
        raise LauncherError(f"{task} has no action '{rest[0]}'; choose one of {', '.join(plugin.actions)}")
    if flags["local"] or any(arg in ("-h", "--help") for arg in rest[1:]):  # help needs no container
        from tao_siamese_oi.launcher.launch import run_local

        return run_local(plugin, rest)
    from tao_siamese_oi.launcher.launch import run_docker

    return run_docker(plugin, rest, image=flags["image"], dry_run=flags["dry_run"])


def main(argv=None) -> None:
    flags, args = _parse_flags(list(sys.argv[1:] if argv is None else argv))
    try:
        code = dispatch(args, flags)
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:  # noqa: BLE001 - the CLI edge: one line, traceback only with --debug
        from tao_siamese_oi.launcher import LauncherError

        if flags["debug"]:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        code = exc.exit_code if isinstance(exc, LauncherError) else 1
    sys.exit(code)


if __name__ == "__main__":
    main()
