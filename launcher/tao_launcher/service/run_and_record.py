"""``python -m tao_launcher.service.run_and_record EXIT_FILE COMMAND...``: check the job's spec against its walls
(``walls.json`` beside EXIT_FILE), run COMMAND, forward SIGTERM/SIGINT to it, and write its exit code to EXIT_FILE
(written atomically), so the service knows how a job ended even if it was restarted meanwhile."""

import os
import signal
import subprocess
import sys
from pathlib import Path

SPEC_ERROR_CODE = 2  # as a task's own spec errors


def main(argv: list[str]) -> int:
    exit_file, command = argv[0], argv[1:]
    code = _walls_hold(Path(exit_file).parent)
    if code:
        return _record(exit_file, code)
    child = subprocess.Popen(command, env=job_environment(dict(os.environ)))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, f: child.send_signal(s))
    code = child.wait()
    return _record(exit_file, 128 - code if code < 0 else code)  # killed by a signal: the shell's convention


def _record(exit_file: str, code: int) -> int:
    tmp = f"{exit_file}.tmp"
    with open(tmp, "w") as handle:
        handle.write(f"{code}\n")
    os.replace(tmp, exit_file)
    return code


def _walls_hold(job_dir: Path) -> int:
    """The job's spec checked again against its walls (walls.py), now, just before the task starts: 0, or the
    spec error's exit code with one line in the job's log."""
    from tao_launcher.service.walls import WALLS_FILE, WallError, check_written

    walls = job_dir / WALLS_FILE
    if not walls.is_file():
        return 0
    try:
        check_written(walls)
    except (WallError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # a damaged walls.json too
        print(f"error: the job's spec leaves its walls: {exc}", file=sys.stderr, flush=True)
        return SPEC_ERROR_CODE
    return 0


def job_environment(env: dict[str, str]) -> dict[str, str]:
    """The task's environment: a sealed encryption key opened into TAO_JOB_ENCRYPTION_KEY (secret.py)."""
    from tao_launcher.protocol import KEY_ENV
    from tao_launcher.service.secret import SEALED_ENV, SECRET_FILE_ENV

    sealed, secret_file = env.pop(SEALED_ENV, None), env.pop(SECRET_FILE_ENV, None)
    if sealed and secret_file:
        from tao_launcher.service.secret import open_job_key

        env[KEY_ENV] = open_job_key(sealed, Path(secret_file))
    return env


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
