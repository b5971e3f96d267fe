"""``python -m tao_launcher.service.run_and_record EXIT_FILE COMMAND...``: run COMMAND, forward SIGTERM/SIGINT to
it, and write its exit code to EXIT_FILE (written atomically), so the service knows how a job ended even if it
was restarted meanwhile."""

import os
import signal
import subprocess
import sys


def main(argv: list[str]) -> int:
    exit_file, command = argv[0], argv[1:]
    child = subprocess.Popen(command)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, f: child.send_signal(s))
    code = child.wait()
    code = 128 - code if code < 0 else code  # killed by a signal: the shell's convention
    tmp = f"{exit_file}.tmp"
    with open(tmp, "w") as handle:
        handle.write(f"{code}\n")
    os.replace(tmp, exit_file)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
