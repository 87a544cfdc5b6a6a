"""The Redshift load's SQL (`components/foundation/sql/redshift/`) on PostgreSQL, where the two dialects agree.

The load step runs, in one transaction: create the table, create the staging table, COPY curated into it, delete
what left curated, MERGE, drop the staging table. Here every statement but COPY runs on a PostgreSQL server the test
starts (initdb/pg_ctl; as root the cluster belongs to the `postgres` user), in the same order and transaction, and
COPY is stood in for by inserting the rows of curated's Parquet files (written by the Polars engine) by position, as
COPY ... FORMAT AS PARQUET maps them. The engine-only statements (the external schema over the Data Catalog and
COPY itself: Redshift's alone) are named, not run; what only Redshift shows is listed in docs/architectures/query.md.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from components.foundation import queries
from components.foundation.curated_table import COLUMNS
from etl_jobs import pipeline
from etl_jobs.engines import get_engine
from etl_jobs.zones import Zones
from tests.support.orders import csv_bytes, row
from tests.support.runs import land, read_curated

psycopg = pytest.importorskip("psycopg")

POSTGRES_USER = "postgres"
TOOLS = ("initdb", "pg_ctl")


def _bin_dir() -> Path | None:
    found = [shutil.which(tool) for tool in TOOLS]
    if all(found):
        return Path(str(found[0])).parent
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if all((folder / tool).exists() for tool in TOOLS):
            return folder
    return None


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A throwaway PostgreSQL server (15+: MERGE), stopped and removed at the end."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL (initdb, pg_ctl) is not installed: the warehouse SQL needs a server to run on")
    root = Path(tempfile.mkdtemp(prefix="warehouse-pg-"))
    as_root = os.geteuid() == 0
    user = POSTGRES_USER if as_root else os.environ.get("USER", "postgres")
    prefix = ["runuser", "-u", POSTGRES_USER, "--"] if as_root else []
    if as_root:
        shutil.chown(root, POSTGRES_USER, POSTGRES_USER)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = root / "data"

    def run(*argv: str) -> None:
        subprocess.run([*prefix, str(bin_dir / argv[0]), *argv[1:]], check=True, capture_output=True, timeout=120)

    run("initdb", "-D", str(data), "-U", user, "-A", "trust", "-E", "UTF8", "--locale=C")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    run("pg_ctl", "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
    try:
        yield f"host=127.0.0.1 port={port} user={user} dbname=postgres"
    finally:
        run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dsn(server: str, request: pytest.FixtureRequest) -> str:
    """A fresh database of its own for each test."""
    name = request.node.name.lower().replace("-", "_")[:60]
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return server.replace("dbname=postgres", f"dbname={name}")


def parquet_rows(zones: Zones) -> list[tuple[Any, ...]]:
    """What COPY would load: every row of curated's published files, columns in file order (UTC times naive, as a
    Redshift TIMESTAMP holds them)."""
    rows: list[tuple[Any, ...]] = []
    for path in sorted(Path(zones.curated).glob("order_date=*/*.parquet")):
        frame = pl.read_parquet(path).with_columns(pl.col("order_ts").dt.replace_time_zone(None))
        assert frame.columns == [name for name, _ in COLUMNS], "COPY maps Parquet columns by position"
        rows += frame.rows()
    return rows


def load(dsn: str, zones: Zones) -> None:
    """The load's statements in one transaction, with the rows inserted where COPY would run."""
    columns = ", ".join(name for name, _ in COLUMNS)
    marks = ", ".join(["%s"] * len(COLUMNS))
    with psycopg.connect(dsn) as connection, connection.transaction():
        for name in queries.LOAD:
            if name == "copy":
                with connection.cursor() as cursor:
                    cursor.executemany(f"INSERT INTO orders_load ({columns}) VALUES ({marks})", parquet_rows(zones))
                continue
            connection.execute(queries.warehouse_statement(name))


def warehouse(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as connection:
        return connection.execute(
            "SELECT order_id, order_date, amount, amount_usd, status, landing_seq FROM public.orders ORDER BY order_id"
        ).fetchall()


def expected(zones: Zones) -> list[tuple[Any, ...]]:
    """Curated as the engine published it (order_date from the partition path)."""
    curated = read_curated(zones)
    return [
        (r["order_id"], r["order_date"], r["amount"], r["amount_usd"], r["status"], r["landing_seq"])
        for r in curated.iter_rows(named=True)
    ]


def run_delivery(zones: Zones, name: str, run_date: date, *lines: str) -> None:
    land(zones, csv_bytes(*lines), name)
    result = pipeline.run(zones, run_date, max_quarantine_rate=1.0, engine=get_engine("polars"))
    assert result["status"] == "succeeded", result


def test_engine_only_statements_are_named() -> None:
    """COPY and the external schema are Redshift's; everything else must run on PostgreSQL (below)."""
    names = [queries.EXTERNAL_SCHEMA, *queries.LOAD]
    assert [name for name in names if queries.engine_only(name)] == ["external_schema", "copy"]


def test_the_load_merges_curated_into_the_table_run_after_run(dsn: str, tmp_path: Path) -> None:
    zones = Zones.under(str(tmp_path / "lake"))
    run_delivery(
        zones,
        "d1.csv",
        date(2024, 5, 4),
        row("B1", order_ts="2024-05-01T10:00:00Z", amount="10.00"),
        row("B2", order_ts="2024-05-01T23:30:00Z", currency="EUR", amount="20.00"),
    )
    load(dsn, zones)
    first = warehouse(dsn)
    assert first == expected(zones)
    assert [r[0] for r in first] == ["B1", "B2"]

    # A later version of B1 on another day, and a new order: updated and inserted, one row per order.
    run_delivery(
        zones,
        "d2.csv",
        date(2024, 5, 5),
        row("B1", order_ts="2024-05-02T09:00:00Z", amount="11.00", status="shipped"),
        row("B3", order_ts="2024-05-03T00:00:00Z", amount="3.00"),
    )
    load(dsn, zones)
    second = warehouse(dsn)
    assert second == expected(zones)
    b1 = next(r for r in second if r[0] == "B1")
    assert (b1[1], b1[2], b1[4], b1[5]) == (date(2024, 5, 2), Decimal("11.00"), "shipped", 2)


def test_orders_no_longer_in_curated_leave_the_warehouse(dsn: str, tmp_path: Path) -> None:
    zones = Zones.under(str(tmp_path / "lake"))
    run_delivery(zones, "d1.csv", date(2024, 5, 4), row("C1", order_ts="2024-05-01T10:00:00Z"))
    with psycopg.connect(dsn) as connection:
        connection.execute(queries.warehouse_statement("create_table"))
        connection.execute(
            "INSERT INTO public.orders (order_id, order_date, amount, landing_seq) "
            "VALUES ('RETRACTED', DATE '2024-04-30', 1.00, 1)"
        )
    load(dsn, zones)
    assert [r[0] for r in warehouse(dsn)] == ["C1"]
