"""The SQL of the query layer, read from the `.sql` files beside this module (pure Python, no pulumi import).

- `NAMED_QUERIES`: what operators ask of curated, in the SQL that Athena (engine version 3, Trino) and DuckDB share,
  registered as Athena named queries in the stack's workgroup and run on DuckDB by the tests over the Parquet the
  engines write. They read the tables `orders` (curated) and `quarantine` (the quarantined rows).
- `warehouse_statements(...)`: the Redshift Serverless load after a pipeline's load, statement by statement. A file
  whose first line starts with `-- engine-only` holds Redshift-only SQL (COPY, the external schema); the others are
  what PostgreSQL and Redshift agree on, and the tests run them on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from string import Template

SQL_DIR = Path(__file__).resolve().parent / "sql"
ENGINE_ONLY = "-- engine-only"
QUARANTINE_TABLE = "quarantine"
"""The catalog table of quarantined rows (`quarantine` zone, `deliveries/`) the named queries read beside `orders`."""


@dataclasses.dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    file: str
    """Relative to `SQL_DIR`."""

    @property
    def sql(self) -> str:
        return (SQL_DIR / self.file).read_text()


NAMED_QUERIES: tuple[NamedQuery, ...] = (
    NamedQuery(
        "daily-revenue-usd-by-country",
        "Revenue in USD (not cancelled or refunded) per order date and country",
        "athena/daily_revenue_usd.sql",
    ),
    NamedQuery(
        "quarantine-rate-by-reason-and-day",
        "Share of the rows delivered for each order date quarantined, per reason",
        "athena/quarantine_rate.sql",
    ),
    NamedQuery(
        "late-and-updated-orders",
        "Orders whose current version arrived after their day was published, or replaced earlier versions",
        "athena/late_and_updated_orders.sql",
    ),
)

EXTERNAL_SCHEMA = "external_schema"
"""Run on its own before the load (CREATE EXTERNAL SCHEMA stays out of the load's transaction)."""
LOAD = ("create_table", "create_staging", "copy", "delete", "merge", "drop_staging")
"""The load's statements, in order; the Data API runs them as one transaction (BatchExecuteStatement)."""


def warehouse_file(name: str) -> Path:
    return SQL_DIR / "redshift" / f"{name}.sql"


def engine_only(name: str) -> bool:
    """Whether the statement is Redshift's alone (its file says so on its first line)."""
    return warehouse_file(name).read_text().startswith(ENGINE_ONLY)


def _statement(text: str) -> str:
    """The statement without its comment lines and the trailing semicolon (the Data API takes one per entry)."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("--")]
    return "\n".join(lines).strip().rstrip(";")


def warehouse_statement(
    name: str, *, curated_partitions: str = "", catalog_database: str = "", external_schema: str = "curated"
) -> str:
    """One statement with its `$` placeholders filled: the curated partitions' S3 prefix (COPY), the catalog
    database and the external schema's name."""
    text = Template(warehouse_file(name).read_text()).substitute(
        curated_partitions=curated_partitions, catalog_database=catalog_database, external_schema=external_schema
    )
    return _statement(text)
