"""Where jobs run. One small interface, so SLURM or Kubernetes executors can be added beside the local one:

- ``submit(command, env, job_dir) -> handle``: start the command (an argv list, never a shell string) and return
  a JSON-able handle the database keeps, so a restarted service can find the job again;
- ``state(handle) -> (state, exit_code)``: "running", "exited" (with the code) or "lost";
- ``cancel(handle)``: ask the job to stop (SIGTERM: the task records "Interrupted by SIGTERM" and exits 143).

A Kubernetes executor would create a Job object in submit (the handle: namespace and name), read its
``status.succeeded/failed`` and the container's exit code in state, and delete it with propagation in cancel.
"""

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Protocol

EXIT_FILE = "exit_code"
LOG_FILE = "job.log"


class Executor(Protocol):
    name: str

    def submit(self, command: list[str], env: dict[str, str], job_dir: Path) -> dict: ...

    def state(self, handle: dict) -> tuple[str, int | None]: ...

    def cancel(self, handle: dict) -> None: ...

    def wait_stopped(self, handle: dict, timeout: float = 60.0) -> None: ...


class LocalExecutor:
    """Jobs as processes of this machine, each in its own session (so a cancel reaches its loader workers). The
    exit code is written to a file by a tiny wrapper, so it is known even after a service restart. With ``user``
    (a service running as root, ``tao serve --run-jobs-as ORG=USER``), the job runs as that system user in a
    folder of its own (mode 0700), so even code a tenant gets to run cannot read another org's files."""

    name = "local"

    def __init__(self, user: str = "", python: str = ""):
        self.user = user
        self.python = python or sys.executable  # with user: an interpreter that user can run (tao serve --job-python)

    @property
    def owner(self) -> tuple[int, int] | None:
        return _owner(self.user) if self.user else None

    def submit(self, command: list[str], env: dict[str, str], job_dir: Path) -> dict:
        job_dir.mkdir(parents=True, exist_ok=True)
        as_user: dict = {}
        if self.owner is not None:
            uid, gid = self.owner
            os.chown(job_dir, uid, gid)
            job_dir.chmod(0o700)
            env = {**env, "HOME": str(job_dir), "USER": self.user, "LOGNAME": self.user}
            as_user = {"user": uid, "group": gid, "extra_groups": []}
        log = open(job_dir / LOG_FILE, "ab")  # noqa: SIM115 - handed to the child
        wrapper = [self.python, "-m", "tao_launcher.service.run_and_record", str(job_dir / EXIT_FILE), *command]
        process = subprocess.Popen(
            wrapper,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=job_dir,  # a relative path in the job's spec is the job's own (service/walls.py)
            start_new_session=True,
            **as_user,
        )
        log.close()
        return {"executor": self.name, "pid": process.pid, "job_dir": str(job_dir), "user": self.user,
                "python": self.python}  # fmt: skip

    def state(self, handle: dict) -> tuple[str, int | None]:
        recorded = recorded_exit(handle)
        if recorded is not None:
            return recorded
        if _alive(handle["pid"]):
            return "running", None
        return "lost", None

    def cancel(self, handle: dict) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(handle["pid"], signal.SIGTERM)

    def wait_stopped(self, handle: dict, timeout: float = 60.0) -> None:
        wait_stopped(self, handle, timeout)


class SlurmExecutor:
    """Jobs as SLURM batch jobs: a script is written and ``sbatch``-ed, ``squeue``/``scontrol`` say whether it is
    queued or running, ``scancel`` stops it (SIGTERM first). The job folder must be on storage the compute nodes
    share; the exit code file and job.log are read from it, so a restarted service re-attaches to its jobs."""

    name = "slurm"
    ACTIVE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING")

    def __init__(self, partition: str = "", cluster: str = ""):
        self.partition, self.cluster = partition, cluster

    def submit(self, command: list[str], env: dict[str, str], job_dir: Path) -> dict:
        job_dir.mkdir(parents=True, exist_ok=True)
        record = [sys.executable, "-m", "tao_launcher.service.run_and_record", str(job_dir / EXIT_FILE), *command]
        script = job_dir / "slurm_job.sh"
        script.write_text("#!/bin/sh\nexec " + " ".join(shlex.quote(part) for part in record) + "\n")
        args = ["sbatch", "--parsable", f"--job-name=tao-{job_dir.name}", f"--output={job_dir / LOG_FILE}",
                "--open-mode=append", f"--chdir={job_dir}"]  # fmt: skip
        args += [f"--partition={self.partition}"] if self.partition else []
        args += [f"--clusters={self.cluster}"] if self.cluster else []
        try:
            done = subprocess.run([*args, str(script)], capture_output=True, text=True, env=env, timeout=60)
        except FileNotFoundError:
            raise RuntimeError("sbatch is not installed where the service runs: no SLURM cluster here") from None
        if done.returncode != 0:
            raise RuntimeError(f"sbatch refused the job: {done.stderr.strip() or done.stdout.strip()}")
        slurm_id = done.stdout.strip().split(";")[0]
        return {"executor": self.name, "slurm_id": slurm_id, "job_dir": str(job_dir), "partition": self.partition}

    def state(self, handle: dict) -> tuple[str, int | None]:
        queued = subprocess.run(["squeue", "-h", "-j", handle["slurm_id"], "-o", "%T"], capture_output=True,
                                text=True, timeout=60).stdout.strip()  # fmt: skip
        if queued in self.ACTIVE:
            return "running", None
        # gone from the queue: finished (its code recorded), or killed before it started (lost)
        return recorded_exit(handle) or ("lost", None)

    def cancel(self, handle: dict) -> None:
        subprocess.run(["scancel", "--signal=TERM", "--full", handle["slurm_id"]], capture_output=True, timeout=60)

    def wait_stopped(self, handle: dict, timeout: float = 60.0) -> None:
        wait_stopped(self, handle, timeout)


class DockerExecutor:
    """Jobs in the plugin's container image (``--backend-type local-docker``), through the launcher's container
    spec: the job's folders are mounted at the same paths (so the spec's paths hold inside), the container runs
    as the service's user with ``init`` and is kept after it exits, so its exit code survives a service restart;
    the service removes it once the code is read. The console goes to ``<job>/job.log``."""

    name = "local-docker"
    in_image = True  # the command is the plugin's argv in its image, not this Python's launcher

    def __init__(self, image: str = "", mounts=(), env: dict | None = None, options: dict | None = None,
                 python: str = "python3"):  # fmt: skip
        self.image, self.mounts, self.env, self.options = image, list(mounts), dict(env or {}), dict(options or {})
        self.python = python  # the image's Python, which has tao_launcher (the plugin's image installs it)

    def submit(self, command: list[str], env: dict[str, str], job_dir: Path) -> dict:
        """``env`` holds only the job's own variables: the container keeps the image's environment. A sealed
        encryption key is opened by the wrapper inside the container with the job's own secret (in the job's
        folder, secret.py), so ``docker inspect`` shows only the sealed form."""
        from tao_launcher.docker_runner import _sdk_kwargs, container_spec, docker_client
        from tao_launcher.mounts import Mount, MountsConfig

        job_dir.mkdir(parents=True, exist_ok=True)
        folders = {Path(p): p != str(job_dir) for p in self.mounts} | {job_dir: False}  # path -> read only
        # the wrapper checks the job's walls in the container too, and records the exit code there
        command = [self.python, "-m", "tao_launcher.service.run_and_record", str(job_dir / EXIT_FILE), *command]
        mounts = tuple(Mount(path, str(path), read_only=ro) for path, ro in sorted(folders.items()))
        config = MountsConfig(mounts=mounts, envs={**self.env, **env}, options={"gpus": "none", **self.options})
        logged = ["sh", "-c", f'exec "$@" >> {shlex.quote(str(job_dir / LOG_FILE))} 2>&1', "sh", *command]
        spec = container_spec(self.image, logged, config)
        container = docker_client().containers.run(**_sdk_kwargs(spec))
        docker = {"image": self.image, "mounts": self.mounts, "env": self.env, "options": self.options,
                  "python": self.python}  # fmt: skip
        return {"executor": self.name, "container": container.id, "job_dir": str(job_dir), "docker": docker}

    def state(self, handle: dict) -> tuple[str, int | None]:
        from docker.errors import NotFound

        from tao_launcher.docker_runner import docker_client

        exit_file = Path(handle["job_dir"]) / EXIT_FILE
        try:
            container = docker_client().containers.get(handle["container"])
        except NotFound:
            container = None
        if container is not None and container.status in ("created", "running", "restarting"):
            return "running", None
        if container is not None and not exit_file.is_file():  # the wrapper died before it could write it
            exit_file.write_text(f"{int(container.attrs['State']['ExitCode'])}\n")
        if container is not None:  # its code is recorded: the container can go
            container.remove(force=True)
        return recorded_exit(handle) or ("lost", None)

    def cancel(self, handle: dict) -> None:
        from docker.errors import APIError, NotFound

        from tao_launcher.docker_runner import docker_client

        with contextlib.suppress(NotFound, APIError):
            docker_client().containers.get(handle["container"]).kill(signal="SIGTERM")

    def wait_stopped(self, handle: dict, timeout: float = 60.0) -> None:
        wait_stopped(self, handle, timeout)


EXECUTORS = {"local": LocalExecutor, "slurm": SlurmExecutor, "local-docker": DockerExecutor}


def executor_for(handle_or_backend: dict) -> Executor:
    """The executor a job's handle (or a request's backend_details) names; local by default."""
    kind = handle_or_backend.get("executor") or handle_or_backend.get("backend_type") or "local"
    if kind not in EXECUTORS:
        raise ValueError(f"backend_type '{kind}' is not available here; choose one of {', '.join(EXECUTORS)}")
    if kind == "slurm":
        return SlurmExecutor(handle_or_backend.get("partition", ""), handle_or_backend.get("cluster_name", ""))
    if kind == "local-docker":
        return DockerExecutor(**handle_or_backend.get("docker", {}))  # a handle keeps what a resume needs
    return LocalExecutor(handle_or_backend.get("user", ""), handle_or_backend.get("python", ""))


def _owner(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def uid_gid(user: str) -> str:
    """``uid:gid`` of a system user, as Docker's ``--user`` takes it."""
    return "{}:{}".format(*_owner(user))


def recorded_exit(handle: dict) -> tuple[str, int | None] | None:
    """("exited", code) when the job's exit code file exists (written by run_and_record or for a container)."""
    exit_file = Path(handle["job_dir"]) / EXIT_FILE
    if not exit_file.is_file():
        return None
    text = exit_file.read_text().strip()
    return "exited", int(text) if text.lstrip("-").isdigit() else None


def wait_stopped(executor: Executor, handle: dict, timeout: float) -> None:
    """Until a stopped job is really gone (a paused training must have written its checkpoint before a resume)."""
    deadline = time.monotonic() + timeout
    while executor.state(handle)[0] == "running" and time.monotonic() < deadline:
        time.sleep(0.3)


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap our own finished child, if it is one
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
