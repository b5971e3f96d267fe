"""Run one plugin action in a one-shot container through the Docker SDK.

:func:`container_spec` is pure (what to run: image, argv list, mounts, env, user, GPUs, options) and is what
``--dry-run`` prints; :func:`run_container` executes it: logs streamed live, Ctrl-C and SIGTERM forwarded to the
task (a second one stops, then kills the container), the task's exit code returned, the container removed in
every case.
"""

import contextlib
import os
import shlex
import signal
import sys
import uuid

from tao_launcher import LauncherError
from tao_launcher.mounts import MountsConfig

LABEL = "tao_launcher.run"  # every container the launcher starts: `tao list` / `tao stop` find them by it
TASK_LABEL = "tao_launcher.task"
ACTION_LABEL = "tao_launcher.action"
STOP_TIMEOUT_S = 10


def container_spec(
    image: str,
    argv: list[str],
    config: MountsConfig,
    extra_mounts=(),
    uid=None,
    gid=None,
    plugin_options: dict | None = None,
    labels: dict | None = None,
) -> dict:
    options = {**(plugin_options or {}), **config.options}
    environment = dict(config.envs)
    user = options.get("user")
    if not user:  # files the task writes on the host then belong to the caller, not root
        user = f"{os.getuid() if uid is None else uid}:{os.getgid() if gid is None else gid}"
        environment.setdefault("HOME", "/tmp")
    # A list, not the SDK's {source: ...} dict: one source may be mounted twice (read-only and read-write).
    # Paths hold no ':' or ',' (mounts.py refuses them), so the short form is exact.
    volumes = [f"{m.source}:{m.destination}:{'ro' if m.read_only else 'rw'}" for m in (*config.mounts, *extra_mounts)]
    spec = {
        "image": image,
        "command": list(argv),
        "init": True,
        "user": user,
        "environment": environment,
        "volumes": volumes,
        "labels": {**(labels or {}), LABEL: uuid.uuid4().hex},
        "device_requests": _gpus(options.get("gpus")),
    }
    for key in ("shm_size", "ports", "ulimits", "privileged", "network", "tty", "ipc_mode"):
        if key in options:
            spec[key] = options[key]
    return spec


def _gpus(gpus) -> list[dict]:
    if gpus == "none":
        return []
    if isinstance(gpus, list):
        return [{"device_ids": [str(g) for g in gpus], "capabilities": [["gpu"]]}]
    return [{"count": -1, "capabilities": [["gpu"]]}]


def docker_command_line(spec: dict) -> str:
    """The equivalent ``docker run`` command, for --dry-run."""
    args = ["docker", "run", "--rm", "--init", "--user", spec["user"]]
    args += [f"--label={key}={value}" for key, value in spec["labels"].items()]
    for volume in spec["volumes"]:
        args += ["--volume", volume]
    for key, value in spec["environment"].items():
        args += ["--env", key if value is None else f"{key}={value}"]  # None: docker reads the caller's value
    for request in spec["device_requests"]:
        ids = request.get("device_ids")
        args += ["--gpus", f'"device={",".join(ids)}"' if ids else "all"]
    flags = {"shm_size": "--shm-size", "network": "--network", "ipc_mode": "--ipc"}
    args += [item for key, flag in flags.items() if key in spec for item in (flag, str(spec[key]))]
    args += [f"--ulimit={name}={value}" for name, value in spec.get("ulimits", {}).items()]
    args += [f"--publish={host}:{port}" for port, host in spec.get("ports", {}).items()]
    args += ["--privileged"] if spec.get("privileged") else []
    args += ["--tty"] if spec.get("tty") else []
    return shlex.join(args + [spec["image"], *spec["command"]])


def _sdk_kwargs(spec: dict) -> dict:
    from docker.types import DeviceRequest, Ulimit

    kwargs = {k: v for k, v in spec.items() if k not in ("ulimits", "device_requests")}
    kwargs["device_requests"] = [DeviceRequest(**r) for r in spec["device_requests"]]
    if "ulimits" in spec:
        kwargs["ulimits"] = [Ulimit(name=n, soft=v, hard=v) for n, v in spec["ulimits"].items()]
    return {**kwargs, "detach": True}


def docker_client():
    import docker
    from docker.errors import DockerException

    try:
        return docker.from_env()
    except DockerException as exc:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        if "Permission denied" in str(exc):
            raise LauncherError(
                f"permission denied on the Docker socket {host}; add your user to the 'docker' "
                "group (then log in again), or run the action here with: tao --local ..."
            ) from None
        raise LauncherError(
            f"cannot reach the Docker daemon at {host}; start Docker (or set DOCKER_HOST), or "
            "run the action in this Python environment with: tao --local ..."
        ) from None


def run_container(spec: dict, host_paths=None, build_hint: str = "") -> int:
    """Run the container, its output relayed with container paths turned into host paths (``host_paths``, a
    paths.HostPaths), its exit code returned; a missing image is one line with ``build_hint`` (the plugin's
    command that builds it)."""
    from docker.errors import APIError, ImageNotFound

    client = docker_client()
    try:
        client.images.get(spec["image"])
    except ImageNotFound:
        build = build_hint or f"docker build -t {spec['image']} ."
        raise LauncherError(
            f"image {spec['image']} is not on this machine; build it ({build}) or pull it, or choose another with "
            "--image"
        ) from None
    try:
        container = client.containers.run(**_sdk_kwargs(spec))
    except APIError as exc:
        _remove_run(client, spec)  # a failed start leaves a 'created' container behind
        if "could not select device driver" in str(exc) or "nvidia" in str(exc).lower():
            raise LauncherError(
                "Docker has no GPU runtime here; install the NVIDIA Container Toolkit, or run on "
                'the CPU with "DockerOptions": {"gpus": "none"} in the mounts file'
            ) from None
        raise LauncherError(f"Docker refused to start the container: {exc.explanation or exc}") from None
    try:
        with _forward_signals(container):
            for chunk in container.logs(stream=True, follow=True):
                sys.stdout.buffer.write(host_paths.feed(chunk) if host_paths else chunk)
                sys.stdout.flush()
            if host_paths:
                sys.stdout.buffer.write(host_paths.flush())
                sys.stdout.flush()
            return int(container.wait().get("StatusCode", 1))
    finally:
        _remove_run(client, spec)


def _remove_run(client, spec: dict) -> None:
    from docker.errors import APIError

    for container in client.containers.list(all=True, filters={"label": f"{LABEL}={spec['labels'][LABEL]}"}):
        with contextlib.suppress(APIError):
            container.remove(force=True)


class _forward_signals:
    """First Ctrl-C/SIGTERM goes to the task (init forwards it); a second stops the container, then kills it."""

    def __init__(self, container):
        self.container = container
        self.received = 0
        self.previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.received += 1
        if self.received == 1:
            print(f"\ntao: forwarding {signal.Signals(signum).name} to the task (again to stop it)", file=sys.stderr)
            self.container.kill(signal=signum)
        else:
            print("\ntao: stopping the container", file=sys.stderr)
            self.container.stop(timeout=STOP_TIMEOUT_S)

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        return False
