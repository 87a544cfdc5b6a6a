"""The Athena named queries (`components/foundation/sql/athena/`), run on DuckDB over the Parquet the Polars engine
wrote: two deliveries through the whole pipeline on local zones, then each query's rows compared with rows computed
here from the deliveries themselves (a small model of the contract's version order), never from the SQL.

What only Athena shows (its Trino dialect on the catalog tables, partition projection, the workgroup's cutoff) is
not run here: no Athena emulator exists (moto's returns canned results). The queries use only SQL both engines
share, and DuckDB reads the hive-partitioned curated zone as Athena's projection does.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from components.foundation.athena import QUARANTINE_COLUMNS
from components.foundation.queries import NAMED_QUERIES, QUARANTINE_TABLE
from etl_jobs import pipeline
from etl_jobs.contract.reference import usd_rates
from etl_jobs.engines import get_engine
from etl_jobs.zones import Zones
from tests.support.orders import csv_bytes, row
from tests.support.runs import land

SQL = {query.name: query.sql for query in NAMED_QUERIES}


@dataclasses.dataclass(frozen=True)
class Line:
    """One delivered record, as written, and whether the contract accepts it (`reason` None) or why not."""

    order_id: str
    order_ts: str
    country: str = "US"
    currency: str = "USD"
    amount: str = "10.00"
    status: str = "paid"
    reason: str | None = None

    def csv(self) -> str:
        return row(
            self.order_id,
            order_ts=self.order_ts,
            country=self.country,
            currency=self.currency,
            amount=self.amount,
            status=self.status,
        )

    @property
    def day(self) -> date:
        return datetime.fromisoformat(self.order_ts.replace("Z", "+00:00")).date()


# Two runs. Delivery 1 publishes 1 and 2 May; delivery 2 brings a later version of A1 (an update across runs), a new
# order for 1 May (late), a new day (5 May) and an order delivered twice in one file (A9: the earlier version loses).
DELIVERIES: list[list[Line]] = [
    [
        Line("A1", "2024-05-01T10:00:00Z"),
        Line("A2", "2024-05-01T11:00:00Z", currency="EUR", amount="20.00", status="shipped"),
        Line("A3", "2024-05-01T12:00:00Z", country="DE", currency="EUR", amount="10.00", status="cancelled"),
        Line("A4", "2024-05-02T09:00:00Z", country="DE", amount="7.50", status="delivered"),
        Line("A5", "2024-05-01T08:00:00Z", country="XX", reason="invalid_country"),
        Line("A6", "2024-05-02T08:00:00Z", amount="abc", reason="invalid_amount"),
    ],
    [
        Line("A1", "2024-05-01T15:00:00Z", amount="12.00"),
        Line("A7", "2024-05-01T16:00:00Z", country="GB", currency="GBP", amount="3.00", status="refunded"),
        Line("A8", "2024-05-05T10:00:00Z", amount="4.25"),
        Line("A9", "2024-05-05T11:00:00Z", amount="1.00"),
        Line("A9", "2024-05-05T12:00:00Z", amount="2.00"),
        Line("A10", "2024-05-05T13:00:00Z", amount="abc", reason="invalid_amount"),
    ],
]
RUN_DATES = [date(2024, 5, 4), date(2024, 5, 5)]


@dataclasses.dataclass(frozen=True)
class Version:
    line: Line
    seq: int
    number: int
    """The record's line in its file (the header is line 1)."""

    def rank(self) -> tuple[str, int, int]:
        # The contract's version order with one source: later order_ts, then later delivery, then later line.
        return (self.line.order_ts, self.seq, self.number)


@dataclasses.dataclass
class Model:
    """What curated and quarantine hold after the deliveries, derived from the lines alone: each run's valid
    versions compete with the current ones; the run's losers are quarantined as `superseded`, a current version
    that loses is replaced without a record."""

    current: dict[str, Version] = dataclasses.field(default_factory=dict)
    quarantined: list[tuple[Version, str]] = dataclasses.field(default_factory=list)

    @classmethod
    def of(cls, deliveries: list[list[Line]]) -> Model:
        model = cls()
        for seq, lines in enumerate(deliveries, start=1):
            incoming = [Version(line, seq, number) for number, line in enumerate(lines, start=2)]
            model.quarantined += [(v, v.line.reason) for v in incoming if v.line.reason]
            valid = [v for v in incoming if not v.line.reason]
            for order_id in dict.fromkeys(v.line.order_id for v in valid):
                candidates = [v for v in valid if v.line.order_id == order_id]
                if order_id in model.current:
                    candidates.append(model.current[order_id])
                winner = max(candidates, key=Version.rank)
                model.quarantined += [(v, "superseded") for v in candidates if v is not winner and v.seq == seq]
                model.current[order_id] = winner
        return model

    def revenue(self) -> list[tuple[Any, ...]]:
        totals: dict[tuple[date, str], list[Any]] = defaultdict(lambda: [0, Decimal("0.00")])
        for version in self.current.values():
            line = version.line
            if line.status in ("cancelled", "refunded"):
                continue
            total = totals[(line.day, line.country)]
            total[0] += 1
            total[1] += (Decimal(line.amount) * usd_rates()[line.currency]).quantize(Decimal("0.01"))
        return [(day, country, n, usd) for (day, country), (n, usd) in sorted(totals.items())]

    def quarantine_rates(self) -> list[tuple[Any, ...]]:
        delivered: dict[date, int] = defaultdict(int)
        for version in self.current.values():
            delivered[version.line.day] += 1
        quarantined: dict[tuple[date, str], int] = defaultdict(int)
        for version, reason in self.quarantined:
            delivered[version.line.day] += 1
            quarantined[(version.line.day, reason)] += 1
        return [
            (day, reason, n, delivered[day], round(n / delivered[day], 4))
            for (day, reason), n in sorted(quarantined.items())
        ]

    def late_and_updated(self) -> list[tuple[Any, ...]]:
        superseded = [v for v, reason in self.quarantined if reason == "superseded"]
        first_of_day: dict[date, int] = {}
        for version in [*self.current.values(), *superseded]:
            day = version.line.day
            first_of_day[day] = min(first_of_day.get(day, version.seq), version.seq)
        rows = []
        for order_id, version in sorted(self.current.items()):
            lost = sum(1 for v in superseded if v.line.order_id == order_id)
            late = version.seq > first_of_day[version.line.day]
            if late or lost:
                day = version.line.day
                rows.append((order_id, day, "orders", version.seq, first_of_day[day], lost, late, lost > 0))
        return rows


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Zones:
    """The deliveries run through the whole pipeline on the Polars engine, one run each."""
    zones = Zones.under(str(tmp_path_factory.mktemp("query") / "lake"))
    for number, (lines, run_date) in enumerate(zip(DELIVERIES, RUN_DATES, strict=True), start=1):
        land(zones, csv_bytes(*(line.csv() for line in lines)), f"delivery-{number}.csv")
        result = pipeline.run(zones, run_date, max_quarantine_rate=1.0, engine=get_engine("polars"))
        assert result["status"] == "succeeded", result
    return zones


def run(zones: Zones, query: str) -> list[tuple[Any, ...]]:
    """A named query on DuckDB, with `orders` and `quarantine` as Athena's catalog declares them: curated's
    hive-partitioned Parquet (order_date from the path) and every quarantined-rows file."""
    connection = duckdb.connect()
    curated = Path(zones.curated) / "order_date=*" / "*.parquet"
    quarantined = Path(zones.quarantine) / "deliveries" / "**" / "*.parquet"
    connection.execute(f"CREATE VIEW orders AS SELECT * FROM read_parquet('{curated}', hive_partitioning = true)")
    connection.execute(
        f"CREATE VIEW {QUARANTINE_TABLE} AS SELECT * FROM read_parquet('{quarantined}', hive_partitioning = false)"
    )
    return connection.execute(SQL[query]).fetchall()


MODEL = Model.of(DELIVERIES)


def test_the_model_covers_what_the_queries_distinguish() -> None:
    """The scenario exercises every branch: cancelled and refunded orders, two reasons, an update across runs (A1),
    a loser within a run (A9), a late order (A7) and a day first published by the second delivery (5 May)."""
    assert {reason for _, reason in MODEL.quarantined} == {"invalid_country", "invalid_amount", "superseded"}
    assert [row[0] for row in MODEL.late_and_updated()] == ["A1", "A7", "A9"]
    assert MODEL.current["A1"].line.amount == "12.00"


def test_daily_revenue_in_usd_by_country(lake: Zones) -> None:
    assert run(lake, "daily-revenue-usd-by-country") == MODEL.revenue()


def test_quarantine_rate_by_reason_and_day(lake: Zones) -> None:
    assert run(lake, "quarantine-rate-by-reason-and-day") == MODEL.quarantine_rates()


def test_late_and_updated_orders(lake: Zones) -> None:
    assert run(lake, "late-and-updated-orders") == MODEL.late_and_updated()


def test_every_named_query_is_tested_here() -> None:
    tested = {"daily-revenue-usd-by-country", "quarantine-rate-by-reason-and-day", "late-and-updated-orders"}
    assert set(SQL) == tested


def test_the_quarantine_table_declares_the_columns_the_engine_writes(lake: Zones) -> None:
    """Athena reads Parquet columns by name: the catalog's quarantine table must name what the files hold."""
    files = sorted(Path(lake.quarantine).glob("deliveries/**/*.parquet"))
    assert {path.name for path in files} == {"rows.parquet", "superseded.parquet"}
    for path in files:
        assert list(pl.read_parquet_schema(path)) == [name for name, _ in QUARANTINE_COLUMNS], path
