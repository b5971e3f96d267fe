"""``python -m tao_launcher.service.run_and_record EXIT_FILE COMMAND...``: run COMMAND, forward SIGTERM/SIGINT to
it, and write its exit code to EXIT_FILE (written atomically), so the service knows how a job ended even if it
was restarted meanwhile."""

import os
import signal
import subprocess
import sys


def main(argv: list[str]) -> int:
    exit_file, command = argv[0], argv[1:]
    child = subprocess.Popen(command, env=job_environment(dict(os.environ)))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, f: child.send_signal(s))
    code = child.wait()
    code = 128 - code if code < 0 else code  # killed by a signal: the shell's convention
    tmp = f"{exit_file}.tmp"
    with open(tmp, "w") as handle:
        handle.write(f"{code}\n")
    os.replace(tmp, exit_file)
    return code


def job_environment(env: dict[str, str]) -> dict[str, str]:
    """The task's environment: a sealed encryption key opened into TAO_JOB_ENCRYPTION_KEY (secret.py)."""
    from tao_launcher.service.secret import SEALED_ENV, SECRET_FILE_ENV

    sealed, secret_file = env.pop(SEALED_ENV, None), env.pop(SECRET_FILE_ENV, None)
    if sealed and secret_file:
        from pathlib import Path

        from tao_launcher.service.jobs import KEY_ENV
        from tao_launcher.service.secret import Sealer

        env[KEY_ENV] = Sealer(Path(secret_file)).open(sealed)
    return env


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
