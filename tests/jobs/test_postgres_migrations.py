"""The SQL engine's schema migrations (etl_jobs.engines.postgres_migrations): applied once, re-running is a no-op,
two migrations at once take turns, a changed or unknown migration is refused, and the engine refuses a database
that `migrate` has not brought to its version. Each test gets a database of its own on the session's server.

Time budget: about 5 s on this 2-core machine (a few fresh databases, two CLI processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from etl_jobs.database import LocalDatabase
from etl_jobs.engines import Lineage
from etl_jobs.engines.postgres_engine import PostgresEngine
from etl_jobs.engines.postgres_migrations import SchemaVersionError, check, migrate, migrations
from tests.support.orders import csv_bytes, row
from tests.support.postgres import PostgresServer

REPO = Path(__file__).resolve().parents[2]
HEADER = b"order_id,customer_id,order_ts,country,currency,amount,quantity,status\n"


@pytest.fixture
def fresh(postgres_server: PostgresServer) -> LocalDatabase:
    """A new, empty database."""
    return LocalDatabase(postgres_server.database(f"migrations_{uuid.uuid4().hex[:12]}"))


def recorded(database: LocalDatabase) -> list[tuple[Any, ...]]:
    with database.session() as session:
        return session.query("SELECT version, name, sha256 FROM etl.schema_migrations ORDER BY version")


def test_the_shipped_migrations_run_from_1_without_gaps() -> None:
    shipped = migrations()
    assert [m.version for m in shipped] == list(range(1, len(shipped) + 1))
    assert shipped[0].name == "orders_contract"


def test_migrate_applies_each_migration_once_and_again_is_a_no_op(fresh: LocalDatabase) -> None:
    names = [f"{m.version:04d}_{m.name}" for m in migrations()]
    first = migrate(fresh)
    assert (first["applied"], first["already_applied"], first["version"]) == (names, [], len(names))
    second = migrate(fresh)
    assert (second["applied"], second["already_applied"]) == ([], names)
    assert recorded(fresh) == [(m.version, m.name, m.sha256) for m in migrations()]
    with fresh.session() as session:
        check(session)  # what every engine call runs first: passes now


def test_two_migrations_at_once_take_turns(fresh: LocalDatabase) -> None:
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            results.append(migrate(fresh))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sorted(len(r["applied"]) for r in results) == [0, 0, len(migrations())]
    assert len(recorded(fresh)) == len(migrations())


def test_a_migration_changed_after_it_was_applied_is_refused(fresh: LocalDatabase) -> None:
    migrate(fresh)
    with fresh.session() as session:
        session.execute("UPDATE etl.schema_migrations SET sha256 = 'edited' WHERE version = 1")
    message = "migration 0001_orders_contract.sql changed after it was applied to this database"
    with pytest.raises(SchemaVersionError, match=message):
        migrate(fresh)
    with pytest.raises(SchemaVersionError, match=message), fresh.session() as session:
        check(session)


def test_a_database_ahead_of_the_code_is_refused(fresh: LocalDatabase) -> None:
    migrate(fresh)
    with fresh.session() as session:
        session.execute("INSERT INTO etl.schema_migrations (version, name, sha256) VALUES (999, 'future', 'x')")
    with pytest.raises(SchemaVersionError, match=r"has migration\(s\) \[999\] that this code does not know"):
        migrate(fresh)


def test_the_engine_refuses_a_database_that_was_not_migrated(fresh: LocalDatabase) -> None:
    engine = PostgresEngine(fresh)
    with pytest.raises(SchemaVersionError, match="run `python -m etl_jobs migrate --engine postgres` against it"):
        engine.stage(HEADER, Lineage("orders", 1))
    migrate(fresh)
    with fresh.session() as session:
        session.execute("DELETE FROM etl.schema_migrations WHERE version = 1")
    with pytest.raises(SchemaVersionError, match=r"lacks migration\(s\) \[1\]; run `python -m etl_jobs migrate"):
        engine.stage(HEADER, Lineage("orders", 1))


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    return subprocess.run(
        [sys.executable, "-m", "etl_jobs", *argv],
        cwd=REPO,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_migrate_command_needs_only_the_database(fresh: LocalDatabase, tmp_path: Path) -> None:
    result = tmp_path / "migrate.json"
    done = _cli("migrate", "--engine", "postgres", "--dsn", fresh.dsn, "--result-uri", str(result))
    assert done.returncode == 0, done.stderr
    names = [f"{m.version:04d}_{m.name}" for m in migrations()]
    assert json.loads(result.read_text())["applied"] == names
    assert f"applied {', '.join(names)}; the schema is at version {len(names)}" in done.stderr
    again = _cli("migrate", "--engine", "postgres", "--dsn", fresh.dsn)
    assert again.returncode == 0 and "applied nothing (already up to date)" in again.stderr


def test_stages_on_an_unmigrated_database_are_usage_errors(fresh: LocalDatabase, tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_bytes(HEADER + b"O1,C1,2024-05-01T10:00:00Z,US,USD,1.00,1,paid\n")
    done = _cli(
        "run", "--engine", "postgres", "--dsn", fresh.dsn, "--input", str(source), "--output", str(tmp_path / "o")
    )
    assert done.returncode == 2, done.stderr
    assert (
        "error: the database has no etl schema yet; run `python -m etl_jobs migrate --engine postgres`" in done.stderr
    )
    polars = _cli("migrate", "--engine", "polars")
    assert polars.returncode == 2
    assert "error: --engine polars keeps no schema: there is nothing to migrate (postgres does)" in polars.stderr


# --- the runner role (0002_runner_role.sql): what the deployed stages log in as -------------------------------------

RUNNER = "etl_runner"  # components.architectures.database.RUNNER_USER: the user the stage functions connect as


def _as_runner(postgres_server: PostgresServer, database: LocalDatabase) -> LocalDatabase:
    """The same database, logged in as the runner role (the test server trusts local TCP logins, where Aurora
    takes the role's IAM token)."""
    return LocalDatabase(database.dsn.replace(f"user={postgres_server.user}", f"user={RUNNER}"))


def test_the_component_and_the_migration_name_the_same_runner_user() -> None:
    from components.architectures.database import RUNNER_USER

    assert RUNNER_USER == RUNNER
    (runner,) = [m for m in migrations() if m.name == "runner_role"]
    assert f"CREATE ROLE {RUNNER} LOGIN" in runner.sql


def test_the_runner_role_logs_in_through_rds_iam_with_the_engines_privileges_only(fresh: LocalDatabase) -> None:
    migrate(fresh)
    with fresh.session() as session:
        ((login, superuser, create_role, create_db, iam),) = session.query(
            "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, pg_has_role(rolname, 'rds_iam', 'MEMBER') "
            "FROM pg_roles WHERE rolname = %(role)s",
            {"role": RUNNER},
        )
        assert (login, superuser, create_role, create_db, iam) == (True, False, False, False, True)

        def can(check: str, target: str, privilege: str) -> bool:
            ((allowed,),) = session.query(
                f"SELECT {check}(%(role)s, %(target)s, %(privilege)s)",
                {"role": RUNNER, "target": target, "privilege": privilege},
            )
            return bool(allowed)

        assert can("has_schema_privilege", "etl", "USAGE") and not can("has_schema_privilege", "etl", "CREATE")
        assert can("has_table_privilege", "etl.schema_migrations", "SELECT")
        for table in ("etl.stage_accounting", "etl.merge_accounting"):
            assert can("has_table_privilege", table, "INSERT"), table
            for privilege in ("SELECT", "UPDATE", "DELETE", "TRUNCATE"):
                assert not can("has_table_privilege", table, privilege), (table, privilege)
        for privilege in ("INSERT", "UPDATE", "DELETE"):
            assert not can("has_table_privilege", "etl.schema_migrations", privilege), privilege
        ((database_name,),) = session.query("SELECT current_database()")
        assert can("has_database_privilege", database_name, "TEMPORARY")
        assert not can("has_database_privilege", database_name, "CREATE")


def test_the_engine_runs_a_delivery_as_the_runner_role_which_cannot_change_the_schema_or_its_records(
    postgres_server: PostgresServer, fresh: LocalDatabase, tmp_path: Path
) -> None:
    from etl_jobs.database import DatabasePermissionError

    migrate(fresh)
    runner = _as_runner(postgres_server, fresh)
    source = tmp_path / "orders.csv"
    source.write_bytes(csv_bytes(row("O1"), row("O2")))
    done = _cli(
        "run", "--engine", "postgres", "--dsn", runner.dsn, "--input", str(source), "--output", str(tmp_path / "o"),
        "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["rows_in"], result["rows_curated"], result["rows_quarantined"]) == (2, 2, 0), result
    with fresh.session() as session:  # the accounting rows the runner's calls inserted
        assert session.query("SELECT count(*) FROM etl.stage_accounting") == [(1,)]
        assert session.query("SELECT count(*) FROM etl.merge_accounting") == [(1,)]
    for statement in (
        "DELETE FROM etl.stage_accounting",
        "CREATE TABLE etl.runner_was_here (x int)",
        "DELETE FROM etl.schema_migrations",
    ):
        with pytest.raises(DatabasePermissionError), runner.session() as session:
            session.execute(statement)


def test_the_runner_role_migration_is_idempotent_across_databases_and_says_what_it_needs(
    postgres_server: PostgresServer, fresh: LocalDatabase
) -> None:
    import psycopg

    # The role is the cluster's: the session's engine database made it already, and this database grants it again.
    migrate(fresh)
    with _as_runner(postgres_server, fresh).session() as session:
        session.execute("CREATE TEMPORARY TABLE scratch (x int)")
    (runner,) = [m for m in migrations() if m.name == "runner_role"]
    with psycopg.connect(fresh.dsn) as connection:  # applied again by hand: nothing changes, nothing fails
        connection.execute(runner.sql)
        connection.rollback()
        # Without rds_iam (a PostgreSQL that is not RDS) it stops and says what to create; rolled back.
        connection.execute("DROP ROLE rds_iam")
        with pytest.raises(psycopg.errors.RaiseException, match='role "rds_iam" does not exist') as caught:
            connection.execute(runner.sql)
        assert "CREATE ROLE rds_iam NOLOGIN" in str(caught.value.diag.message_hint)
        connection.rollback()
    with psycopg.connect(fresh.dsn) as connection:
        assert connection.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'rds_iam'").fetchone() == (1,)
