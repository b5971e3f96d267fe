"""``tao info``, ``tao list`` and ``tao stop``: what NVIDIA's launcher offers for its instances, for ours.

The containers are the ones this launcher started, found by the label every one of them carries
(docker_runner.LABEL); nothing else on the engine is listed or stopped.
"""

import sys

from tao_launcher import LauncherError, __version__
from tao_launcher.docker_runner import ACTION_LABEL, LABEL, STOP_TIMEOUT_S, TASK_LABEL, docker_client


def running(client) -> list:
    return client.containers.list(filters={"label": LABEL})


def list_runs() -> int:
    """One row per running task container: id, task, action, image, started."""
    containers = running(docker_client())
    if not containers:
        print("no running tao containers")
        return 0
    rows = [("container", "task", "action", "image", "started")]
    for container in containers:
        labels = container.labels
        image = (container.image.tags or [container.image.short_id])[0]
        started = container.attrs.get("State", {}).get("StartedAt", "")[:19].replace("T", " ")
        rows.append((container.short_id, labels.get(TASK_LABEL, "?"), labels.get(ACTION_LABEL, "?"), image, started))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def stop_runs(container_ids: list[str], stop_all: bool) -> int:
    """Stop the named task containers (an id prefix as `tao list` shows it), or all of them with --all."""
    if not container_ids and not stop_all:
        raise LauncherError("name the containers to stop (tao stop --container_id ID [ID ...]) or give --all")
    containers = running(docker_client())
    chosen = containers if stop_all else []
    for wanted in container_ids:
        matches = [c for c in containers if c.id.startswith(wanted)]
        if len(matches) != 1:
            problem = "matches none of" if not matches else "matches more than one of"
            raise LauncherError(f"container {wanted} {problem} the running tao containers; see tao list")
        chosen += matches
    for container in chosen:
        print(f"stopping {container.short_id} ({container.labels.get(TASK_LABEL, '?')})", file=sys.stderr)
        container.stop(timeout=STOP_TIMEOUT_S)
    return 0


def info(plugins, verbose: bool = False) -> int:
    """The launcher, each plugin with its image (and whether this machine has it), the mounts file."""
    from tao_launcher.mounts import load_mounts, mounts_path
    from tao_launcher.protocol import PROTOCOL_VERSION

    print(f"tao launcher {__version__} (plugin protocol {PROTOCOL_VERSION}), Python {sys.version.split()[0]}")
    images = _local_images()
    for name, plugin in sorted(plugins.items()):
        image = plugin.spec.image
        state = "unknown (no Docker engine)" if images is None else ("present" if image in images else "missing")
        print(f"  {name} {plugin.spec.version} ({plugin.distribution}): image {image} {state}")
        if verbose:
            print(f"    actions: {', '.join(plugin.actions)}")
    path, _ = mounts_path()
    if path.is_file():
        config = load_mounts(path)
        print(f"mounts file {path}: {len(config.mounts)} mounts, {len(config.envs)} env variables")
        if verbose:
            for mount in config.mounts:
                print(f"    {mount.source} -> {mount.destination}{' (read-only)' if mount.read_only else ''}")
    else:
        print(f"mounts file {path}: none")
    return 0


def _local_images() -> set[str] | None:
    try:
        client = docker_client()
        return {tag for image in client.images.list() for tag in image.tags}
    except LauncherError:
        return None
