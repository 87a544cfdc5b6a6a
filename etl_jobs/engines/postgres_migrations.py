"""The SQL engine's schema as versioned migrations: `etl_jobs/sql/migrations/NNNN_name.sql`, applied in order.

`migrate(database)` is the step a deployment runs before the transform (`python -m etl_jobs migrate --engine
postgres`): under an advisory lock (two runners migrating at once take turns), it creates `etl.schema_migrations`
if needed and applies, each in the one transaction of the call, the migrations not recorded there; re-running it is
a no-op. A recorded migration whose file changed since, or a database ahead of this code, is an error: migrations
are never edited once released, and older job code must not run on a newer schema.
`check(session)` is what every engine call runs first: the database must be at exactly this code's version.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from etl_jobs.database import Database, DatabaseConfigError, Session

SCHEMA = "etl"
MIGRATE_COMMAND = "python -m etl_jobs migrate --engine postgres"
_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
# One key for pg_advisory_xact_lock: the same in every process that migrates this schema.
_LOCK_KEY = 0x65746C5F6D6967  # "etl_mig"

_BOOKKEEPING = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    sha256 text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""


class SchemaVersionError(DatabaseConfigError):
    """The database's etl schema is not at the version this code expects (run migrate, or deploy newer code)."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    sha256: str


@cache
def migrations() -> tuple[Migration, ...]:
    """Every migration shipped with the code, by version; versions run 1, 2, ... without gaps."""
    folder = resources.files("etl_jobs").joinpath("sql", "migrations")
    found = []
    for entry in folder.iterdir():
        match = _NAME.fullmatch(entry.name)
        if match is None:
            if entry.name.endswith(".sql"):
                raise ValueError(f"migration file {entry.name} is not named NNNN_name.sql")
            continue
        data = entry.read_bytes()
        found.append(Migration(int(match[1]), match[2], data.decode("utf-8"), hashlib.sha256(data).hexdigest()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"migration versions must run 1, 2, ... without gaps or repeats; found {versions}")
    return tuple(found)


def _recorded(session: Session) -> dict[int, tuple[str, str]]:
    rows = session.query(f"SELECT version, name, sha256 FROM {SCHEMA}.schema_migrations ORDER BY version")
    return {int(version): (str(name), str(digest)) for version, name, digest in rows}


def _check_recorded(recorded: dict[int, tuple[str, str]], known: tuple[Migration, ...]) -> None:
    by_version = {m.version: m for m in known}
    ahead = sorted(set(recorded) - set(by_version))
    if ahead:
        raise SchemaVersionError(
            f"the database's {SCHEMA} schema has migration(s) {ahead} that this code does not know (it ends at "
            f"{len(known)}); deploy the job code that added them instead of this older one"
        )
    for version, (name, digest) in recorded.items():
        if by_version[version].sha256 != digest:
            raise SchemaVersionError(
                f"migration {version:04d}_{name}.sql changed after it was applied to this database; released "
                "migrations are never edited: restore it and add the change as a new migration"
            )


def migrate(database: Database) -> dict[str, Any]:
    """Apply the migrations the database lacks; returns what was applied and the version it is at now."""
    known = migrations()
    with database.session() as session:
        session.execute("SELECT pg_advisory_xact_lock(%(key)s)", {"key": _LOCK_KEY})
        session.execute(_BOOKKEEPING)
        recorded = _recorded(session)
        _check_recorded(recorded, known)
        applied = []
        for migration in known:
            if migration.version in recorded:
                continue
            session.execute(migration.sql)
            session.execute(
                f"INSERT INTO {SCHEMA}.schema_migrations (version, name, sha256) "
                "VALUES (%(version)s, %(name)s, %(sha256)s)",
                {"version": migration.version, "name": migration.name, "sha256": migration.sha256},
            )
            applied.append(f"{migration.version:04d}_{migration.name}")
    return {
        "stage": "migrate",
        "database": database.describe(),
        "applied": applied,
        "already_applied": [f"{v:04d}_{recorded[v][0]}" for v in sorted(recorded)],
        "version": len(known),
    }


def check(session: Session) -> None:
    """Raise SchemaVersionError unless the database holds exactly the migrations this code ships."""
    known = migrations()
    ((exists,),) = session.query("SELECT to_regclass(%(table)s) IS NOT NULL", {"table": f"{SCHEMA}.schema_migrations"})
    if not exists:
        raise SchemaVersionError(f"the database has no {SCHEMA} schema yet; run `{MIGRATE_COMMAND}` against it first")
    recorded = _recorded(session)
    _check_recorded(recorded, known)
    missing = [m.version for m in known if m.version not in recorded]
    if missing:
        raise SchemaVersionError(
            f"the database's {SCHEMA} schema lacks migration(s) {missing}; run `{MIGRATE_COMMAND}` before the stages"
        )
