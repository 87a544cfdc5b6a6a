"""The curated table the foundation declares in the Data Catalog, held against what the engines really write: the
Polars engine runs a generated multi-day file into a local lake, and every partition file it wrote must sit where the
table's projection template puts its `order_date`, inside the projected range, with the table's columns and types
(read from the Parquet footer, not from the engine's code). Athena itself is not here: what it does with the
parameters (projection, skipping `_` folders) is AWS's documented behaviour."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from etl_jobs import pipeline, sample
from etl_jobs.engines import get_engine
from etl_jobs.zones import Zones
from etlctl.mocks import Registration
from tests.support.resources import named, of_type
from tests.support.runs import land
from tests.support.stacks import STACKS, evaluate_config, evaluated

TABLE = "aws:glue/catalogTable:CatalogTable"
# Java date format letters Athena's projection uses, as strftime directives.
_JAVA_TO_STRFTIME = {"yyyy": "%Y", "MM": "%m", "dd": "%d"}


_SQL_TO_HIVE = {
    "VARCHAR": "string",
    "TIMESTAMP WITH TIME ZONE": "timestamp",
    "INTEGER": "int",
    "BIGINT": "bigint",
    "DATE": "date",
}


def parquet_columns(path: Path) -> list[tuple[str, str]]:
    """(name, Hive type) of a Parquet file's columns, as DuckDB reads its footer (no hive partitioning)."""
    rows = duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}', hive_partitioning = false)").fetchall()
    found = []
    for name, kind, *_ in rows:
        decimal = re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", kind)
        found.append((name, f"decimal({decimal[1]},{decimal[2]})" if decimal else _SQL_TO_HIVE[kind]))
    return found


def timestamp_units(path: Path) -> set[str]:
    """The Parquet time units of the file's timestamp columns (Athena reads TIMESTAMP_MICROS, not INT96)."""
    rows = duckdb.sql(f"SELECT logical_type FROM parquet_schema('{path}') WHERE logical_type LIKE 'TimestampType%'")
    units = set()
    for (logical,) in rows.fetchall():
        # e.g. "TimestampType(isAdjustedToUTC=1, unit=TimeUnit(MILLIS=<null>, MICROS=MicroSeconds(), NANOS=<null>))"
        units |= {unit for unit in ("MILLIS", "MICROS", "NANOS") if not re.search(rf"{unit}=<null>", logical)}
    return units


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A curated zone written by the Polars engine: a file of orders over five days."""
    root = tmp_path_factory.mktemp("lake")
    zones = Zones.under(str(root))
    generated = sample.generate(400, start=datetime(2024, 2, 27, tzinfo=UTC), days=5, seed=7)
    land(zones, generated.data)
    result = pipeline.run(zones, date(2024, 3, 2), max_quarantine_rate=1.0, engine=get_engine("polars"))
    assert result["rows_curated"] > 0
    return Path(zones.curated)


@pytest.fixture(scope="module")
def table() -> Registration:
    return named(evaluated("dev"), "lake-curated-table")


def _substitute(template: str, value: date, java_format: str) -> str:
    pattern = re.sub("|".join(_JAVA_TO_STRFTIME), lambda m: _JAVA_TO_STRFTIME[m.group(0)], java_format)
    return template.replace("${order_date}", value.strftime(pattern))


def test_every_written_partition_is_where_the_projection_looks(written: Path, table: Registration) -> None:
    parameters = table.inputs["parameters"]
    location = table.inputs["storageDescriptor"]["location"]
    template = parameters["storage.location.template"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.order_date.type"] == "date"
    assert parameters["projection.order_date.interval"] == "1"
    assert parameters["projection.order_date.interval.unit"] == "DAYS"
    first, last = parameters["projection.order_date.range"].split(",")
    assert last == "NOW+1DAYS"

    files = sorted(p for p in written.rglob("*.parquet") if not p.relative_to(written).parts[0].startswith("_"))
    assert len(files) >= 5, "the sample spans five days"
    for path in files:
        folder, name = path.relative_to(written).parent.as_posix(), path.name
        day = date.fromisoformat(folder.split("=", 1)[1])
        # The template with the curated root of the deployed table, applied to this lake's root instead.
        projected = _substitute(template, day, parameters["projection.order_date.format"])
        assert projected == f"{location}{folder}/", path
        assert name == "part-00000.parquet"
        assert date.fromisoformat(first) <= day <= datetime.now(UTC).date()


def test_the_written_files_have_the_tables_columns_and_types(written: Path, table: Registration) -> None:
    declared = [(c["name"], c["type"]) for c in table.inputs["storageDescriptor"]["columns"]]
    partition = [(c["name"], c["type"]) for c in table.inputs["partitionKeys"]]
    assert partition == [("order_date", "date")]
    for path in written.glob("order_date=*/*.parquet"):
        assert parquet_columns(path) == declared, path
        assert timestamp_units(path) == {"MICROS"}, path


def test_the_table_reads_parquet_as_an_external_table(table: Registration) -> None:
    descriptor: dict[str, Any] = table.inputs["storageDescriptor"]
    assert table.inputs["tableType"] == "EXTERNAL_TABLE"
    assert table.inputs["parameters"]["classification"] == "parquet"
    assert descriptor["serDeInfo"]["serializationLibrary"].endswith("ParquetHiveSerDe")
    assert descriptor["inputFormat"].endswith("MapredParquetInputFormat")
    assert descriptor["location"].startswith("s3://") and descriptor["location"].endswith("/")


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_declares_the_table_in_its_curated_database(stack: str) -> None:
    evaluation = evaluated(stack)
    # Beside it, Athena's quarantine table (tests/unit/test_query.py).
    (table,) = [t for t in of_type(evaluation, TABLE) if t.inputs["name"] == "orders"]
    # The curated database is the lake's own; an architecture may add others (Glue's raw discovery database).
    (database,) = [
        d for d in of_type(evaluation, "aws:glue/catalogDatabase:CatalogDatabase") if d.parent == table.parent
    ]
    assert table.inputs["name"] == "orders"
    assert table.inputs["databaseName"] == database.inputs["name"]
    assert table.protect is (evaluation.config.environment == "prod")


def test_a_stack_without_architectures_still_declares_the_table(tmp_path: Path) -> None:
    evaluation = evaluate_config(tmp_path, {"aws:region": "eu-west-1", "etl-platform:environment": "dev"})
    assert sorted(t.inputs["name"] for t in of_type(evaluation, TABLE)) == ["orders", "quarantine"]
