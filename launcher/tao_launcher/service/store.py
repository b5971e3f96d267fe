"""The service's state: workspaces, datasets, jobs and login tokens, in a SQL database through SQLAlchemy.

SQLite (a file) by default, PostgreSQL (or any SQLAlchemy URL) when given. Every row belongs to one org; every
query filters by it, so an org never sees another's rows. Tokens are stored as SHA-256 hashes, never in clear,
and encryption keys of jobs are not stored at all (they go to the job's process environment only).
"""

import datetime
import os
import uuid

from sqlalchemy import JSON, DateTime, String, Text, create_engine, inspect, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker


def new_id() -> str:
    return str(uuid.uuid4())


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class Base(DeclarativeBase):
    pass


class Token(Base):
    __tablename__ = "tokens"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the bearer token
    org: Mapped[str] = mapped_column(String(128), index=True)
    created: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=now)


class Workspace(Base):
    __tablename__ = "workspaces"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org: Mapped[str] = mapped_column(String(128), index=True)
    name: Mapped[str] = mapped_column(String(256))
    cloud_type: Mapped[str] = mapped_column(String(32))
    root: Mapped[str] = mapped_column(Text)  # the folder on this machine datasets are found under
    created: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=now)

    def to_api(self) -> dict:
        return {"id": self.id, "name": self.name, "cloud_type": self.cloud_type, "created_on": self.created.isoformat()}


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org: Mapped[str] = mapped_column(String(128), index=True)
    workspace_id: Mapped[str] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)  # resolved, inside the workspace root
    created: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=now)

    def to_api(self) -> dict:
        return {
            "id": self.id,
            "type": self.type,
            "format": self.format,
            "workspace": self.workspace_id,
            "status": "pull_complete",
            "created_on": self.created.isoformat(),
        }


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # experiment | dataset
    action: Mapped[str] = mapped_column(String(64))
    network_arch: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(256), default="")
    workspace_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    parent_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    specs: Mapped[dict] = mapped_column(JSON)  # as the client sent them
    bindings: Mapped[dict] = mapped_column(JSON, default=dict)  # {datasets, ancestors} the plugin's hook binds
    status: Mapped[str] = mapped_column(String(16), default="Pending")
    results_dir: Mapped[str] = mapped_column(Text, default="")
    handle: Mapped[dict] = mapped_column(JSON, default=dict)  # the executor's reference (PID, SLURM id, ...)
    exit_code: Mapped[int | None] = mapped_column(nullable=True)
    sealed_key: Mapped[str | None] = mapped_column(Text, nullable=True)  # the encryption key, sealed (secret.py)
    created: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=now)
    updated: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=now, onupdate=now)


class Experiment(Base):
    """One trial of an AutoML search (service/automl.py): an ordinary job of the search's org, with the Optuna
    trial it answers and what the search has read of it."""

    __tablename__ = "automl_experiments"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org: Mapped[str] = mapped_column(String(128), index=True)
    search_id: Mapped[str] = mapped_column(String(36), index=True)  # the search's job
    index: Mapped[int] = mapped_column()  # 0-based, the client's automl_experiment_index
    job_id: Mapped[str] = mapped_column(String(36))
    trial_number: Mapped[int] = mapped_column()
    state: Mapped[str] = mapped_column(String(16), default="running")  # running | done | failed | pruned | canceled
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    metric: Mapped[float | None] = mapped_column(nullable=True)  # the last epoch's value of the watched metric
    reported_epoch: Mapped[int] = mapped_column(default=-1)  # the last epoch reported to the study
    message: Mapped[str] = mapped_column(Text, default="")


class Published(Base):
    """A finished job's model published as a base experiment of its org (``publish-model``)."""

    __tablename__ = "published"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org: Mapped[str] = mapped_column(String(128), index=True)
    job_id: Mapped[str] = mapped_column(String(36))
    network_arch: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text, default="")
    team: Mapped[str] = mapped_column(String(128), default="")
    created: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=now)

    def to_api(self) -> dict:
        return {"id": self.id, "name": self.name, "network_arch": self.network_arch, "description": self.description,
                "base_experiment_metadata": {"published_from_job": self.job_id, "team": self.team}}  # fmt: skip


class Store:
    """Sessions on one database; tables are created when missing."""

    def __init__(self, url: str):
        if url.startswith(("postgresql://", "postgres://")):  # the driver the service extra installs (psycopg 3)
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        self.engine = create_engine(url, future=True)
        Base.metadata.create_all(self.engine)
        if self.engine.url.get_backend_name() == "sqlite" and self.engine.url.database not in (None, "", ":memory:"):
            os.chmod(self.engine.url.database, 0o600)  # readable by the service alone, not by jobs of other users
        self._check_columns()
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def _check_columns(self) -> None:
        """A database made by an older service lacks columns: say so instead of failing on the first query."""
        existing = inspect(self.engine)
        for table in Base.metadata.sorted_tables:
            missing = {c.name for c in table.columns} - {c["name"] for c in existing.get_columns(table.name)}
            if missing:
                raise RuntimeError(
                    f"the database's table {table.name} lacks {', '.join(sorted(missing))}: it was made by an older "
                    "service; point --database-url at a new database (or migrate this one)"
                )

    def session(self) -> Session:
        return self.sessions()

    def owned(self, session: Session, model, org: str, row_id: str):
        """The row of ``model`` with that id in that org, or None (another org's row is never returned)."""
        return session.scalar(select(model).where(model.id == row_id, model.org == org))
