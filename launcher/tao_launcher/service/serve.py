"""``tao serve``: start the job service with one command.

    tao serve --data-root DIR [--state-dir DIR] [--host 127.0.0.1] [--port 8000] [--database-url URL]
              [--keys-file keys.json | TAO_SERVICE_API_KEY=...] [--airgapped [--allow-remote]]

Login keys come from a JSON file ({"org": "key", "*": "key for any org"}) or TAO_SERVICE_API_KEY (any org),
never from the command line (it shows in ``ps``). Airgapped mode (no authentication) must be asked for, and then
listens on loopback only unless --allow-remote says otherwise.
"""

import argparse
import json
import logging
import os
from pathlib import Path

from tao_launcher import LauncherError

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def parse(argv: list[str]) -> argparse.Namespace:
    from tao_launcher import __version__

    parser = argparse.ArgumentParser(prog="tao serve", description="Start the TAO-API job service.")
    parser.add_argument("--version", action="version", version=f"tao serve (tao launcher {__version__})")
    parser.add_argument("--data-root", required=True, type=Path, help="datasets: <data-root>/<org>/...")
    parser.add_argument("--state-dir", type=Path, default=Path("~/.local/state/tao_launcher").expanduser())
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--database-url", default="", help="SQLAlchemy URL (default: SQLite in the state dir)")
    parser.add_argument("--keys-file", type=Path, help='JSON {"org": "key", "*": "key for any org"}')
    parser.add_argument("--airgapped", action="store_true", help="no authentication (loopback only)")
    parser.add_argument("--allow-remote", action="store_true", help="let an airgapped service listen beyond loopback")
    parser.add_argument("--run-jobs-as", action="append", default=[], metavar="ORG=USER",
                        help="run ORG's local and container jobs as this system user (the service runs as root); "
                        "ORG * for every org without its own")  # fmt: skip
    parser.add_argument("--token-hours", type=float, default=24.0, help="how long a login token lasts (24)")
    parser.add_argument("--job-python", default="", help="the Python local jobs run with (default: this one); "
                        "with --run-jobs-as, one those users can run, with tao_launcher and the plugins")  # fmt: skip
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace):
    from tao_launcher.service.app import ServiceSettings

    keys = {}
    if args.keys_file:
        try:
            keys = json.loads(args.keys_file.read_text())
        except (OSError, ValueError) as exc:
            raise LauncherError(f"keys file {args.keys_file}: {exc}") from None
        if not isinstance(keys, dict) or not all(isinstance(v, str) and v for v in keys.values()):
            raise LauncherError(f'keys file {args.keys_file}: expected {{"org": "key", ...}}')
    if os.environ.get("TAO_SERVICE_API_KEY"):
        keys.setdefault("*", os.environ["TAO_SERVICE_API_KEY"])
    if not keys and not args.airgapped:
        raise LauncherError("no login key: set TAO_SERVICE_API_KEY or --keys-file, or run --airgapped (loopback)")
    if args.airgapped and args.host not in LOOPBACK and not args.allow_remote:
        raise LauncherError(f"--airgapped has no authentication: it listens on loopback only, not {args.host} "
                            "(add --allow-remote if that is really meant)")  # fmt: skip
    if not args.data_root.is_dir():
        raise LauncherError(f"--data-root {args.data_root} is not a folder; create it (mkdir -p {args.data_root}) "
                            "and put each org's datasets in <data-root>/<org>/")  # fmt: skip
    return ServiceSettings(
        job_users=_job_users(args.run_jobs_as),
        job_python=args.job_python,
        token_ttl_s=args.token_hours * 3600,
        data_root=args.data_root.resolve(),
        state_dir=args.state_dir.expanduser().resolve(),
        database_url=args.database_url,
        api_keys=keys,
        airgapped=args.airgapped,
    )


def _job_users(pairs: list[str]) -> dict[str, str]:
    """``--run-jobs-as ORG=USER``: each user must exist, and only root can start processes as another user."""
    import pwd

    users = {}
    for pair in pairs:
        org, sep, user = pair.partition("=")
        if not sep or not org or not user:
            raise LauncherError(f"--run-jobs-as {pair}: expected ORG=USER (ORG * for every other org)")
        try:
            pwd.getpwnam(user)
        except KeyError:
            raise LauncherError(f"--run-jobs-as {pair}: no system user {user}; create it (useradd {user})") from None
        users[org] = user
    if users and os.geteuid() != 0:
        raise LauncherError("--run-jobs-as needs a service running as root (it starts jobs as other users)")
    return users


class JsonLines(logging.Formatter):
    """One JSON object per log line (time, level, logger, message): what log collectors parse."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                           "message": record.getMessage()})  # fmt: skip


def main(argv: list[str]) -> int:
    try:
        import uvicorn

        from tao_launcher.service.app import create_app
    except ImportError:
        raise LauncherError("the job service needs its extra: pip install 'tao-launcher[service]'") from None
    args = parse(argv)
    settings = settings_from(args)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None)
    return 0
