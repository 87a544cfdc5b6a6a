"""The curated table as the Glue Data Catalog declares it: columns and types from the orders contract, Parquet storage,
and partition projection on `order_date` matching the layout every engine writes (pure Python, no pulumi import).

The data lake (`components.foundation.data_lake`) registers it for every stack, whatever the architectures, so Athena,
Glue Data Quality and Spark read curated by name. What it encodes:

- `COLUMNS`: `etl_jobs.contract.CURATED_COLUMNS` without the partition column, then `LINEAGE_COLUMNS`, in the order the
  engines write them, each with its Hive type (amounts `decimal(18,2)` from the contract's precision and scale; a
  quantity is an `int`; the lineage's sequence and line numbers `bigint`; `order_ts` a `timestamp`, written by the
  engines as Parquet TIMESTAMP_MICROS in UTC).
- `PARTITION_KEYS`: `order_date` (`date`), which lives in the path (`order_date=YYYY-MM-DD/`), not in the files.
- `projection_parameters(location)`: Athena's partition projection (no partitions to register, no crawler): a `date`
  projection in `yyyy-MM-dd` over `PROJECTION_RANGE`, one day apart, and a location template that puts the value where
  `etl_jobs.layout.partition_uri` does. A date outside the range is not projected, so Athena does not see it; the
  data quality ruleset of the glue architecture flags such rows (`order_date` within the range).

Readers skip the `_`-prefixed folders beside the partitions (`_index/`, `_staging/`, `_commits/`, ...): projection
only ever lists `order_date=` locations.
"""

from __future__ import annotations

from datetime import date, timedelta

from etl_jobs import layout
from etl_jobs.contract import CURATED_COLUMNS, LINEAGE_COLUMNS
from etl_jobs.contract.orders import AMOUNT_PRECISION, AMOUNT_SCALE

TABLE_NAME = "orders"
"""The dataset (`etl_jobs.pipeline.DATASET`): the one curated table."""

_AMOUNT = f"decimal({AMOUNT_PRECISION},{AMOUNT_SCALE})"
_TYPES: dict[str, str] = {
    "order_id": "string",
    "customer_id": "string",
    "order_ts": "timestamp",
    "country": "string",
    "currency": "string",
    "amount": _AMOUNT,
    "amount_usd": _AMOUNT,
    "quantity": "int",
    "status": "string",
    "order_date": "date",
    "landing_source": "string",
    "landing_seq": "bigint",
    "landing_line": "bigint",
}
_COMMENTS: dict[str, str] = {
    "order_id": "One row per order across all runs (the latest version wins)",
    "order_ts": "UTC",
    "amount": "In `currency`",
    "amount_usd": "At the contract's reference rate",
    "order_date": "UTC date of order_ts; the partition",
    "landing_source": "Lineage: the source the row was delivered by",
    "landing_seq": "Lineage: the delivery's landing sequence",
    "landing_line": "Lineage: the record's line in the delivered file",
}

PARTITION_KEY = layout.PARTITION_KEY
_missing = [name for name in (*CURATED_COLUMNS, *LINEAGE_COLUMNS) if name not in _TYPES]
if _missing:  # the contract grew a column: give it a type here
    raise RuntimeError(f"curated_table: no catalog type for contract column(s) {', '.join(_missing)}")

COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (name, _TYPES[name]) for name in (*CURATED_COLUMNS, *LINEAGE_COLUMNS) if name != PARTITION_KEY
)
"""(name, Hive type) of every column stored in the files, in the order the engines write them."""
PARTITION_KEYS: tuple[tuple[str, str], ...] = ((PARTITION_KEY, _TYPES[PARTITION_KEY]),)

PROJECTION_FORMAT = "yyyy-MM-dd"
"""Java date format of the projected value: what `date.isoformat()` writes in the partition folder."""
PROJECTION_FIRST_DAY = date(1970, 1, 1)
PROJECTION_RANGE = f"{PROJECTION_FIRST_DAY.isoformat()},NOW+1DAYS"
"""Orders dated from 1970 to tomorrow (UTC; a day ahead for producers whose clocks run early) are visible."""

PARQUET = {
    "input_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "output_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "serialization_library": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
}


def comment(column: str) -> str | None:
    return _COMMENTS.get(column)


def location_template(location: str) -> str:
    """Where a projected partition lives: `location` (the curated root, `s3://bucket/`) and the layout's folder."""
    base = location if location.endswith("/") else location + "/"
    return f"{base}{layout.PARTITIONS}${{{PARTITION_KEY}}}/"


def projection_parameters(location: str) -> dict[str, str]:
    """The table parameters that turn on partition projection over `order_date` for a table at `location`."""
    key = PARTITION_KEY
    return {
        "projection.enabled": "true",
        f"projection.{key}.type": "date",
        f"projection.{key}.format": PROJECTION_FORMAT,
        f"projection.{key}.range": PROJECTION_RANGE,
        f"projection.{key}.interval": "1",
        f"projection.{key}.interval.unit": "DAYS",
        "storage.location.template": location_template(location),
    }


def table_parameters(location: str) -> dict[str, str]:
    """Every parameter of the table: an external Parquet table with partition projection."""
    return {"classification": "parquet", "EXTERNAL": "TRUE", **projection_parameters(location)}


def projected_days(today: date) -> tuple[date, date]:
    """The first and last `order_date` the projection covers when evaluated on `today` (UTC)."""
    return PROJECTION_FIRST_DAY, today + timedelta(days=1)


def hive_type(column: str) -> str:
    """The Hive type of a contract or lineage column (what the catalog declares for it)."""
    return _TYPES[column]
