"""The engine-agnostic scenario suite of the orders contract: deliveries, an independent model of the curated table,
and the multi-day scenario every engine passes with the same rows out.

- `Order` / `Delivery`: test data whose validity is known by construction (each bad line says its reason).
- `Model`: the contract's promise, computed from that data alone (never from the job code): claims with per-source
  landing sequences, duplicates by content, retractions, and the curated table as the fold of every accepted,
  unretracted row by version order (later order_ts, then higher landing sequence, then source, then later line).
- `Lake`: what a scenario needs from a place the jobs run against (`tests.support.lakes` has local and S3 ones,
  driving `python -m etl_jobs` as separate processes; the stateful test drives the pipeline in process).
- `multi_day(lake, engine)`: new files, updates, a partition move, a day with nothing landed, re-runs, a bad file
  beside a good one, an empty re-upload, a byte-identical re-delivery, gzip and CR-only input, two pipelines at once,
  a retraction and a reprocess, with the curated table and the per-file accounting checked after every day.
A later engine's tests call `multi_day(lake, "spark")` with a `Lake` of their own.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from tests.support.orders import HEADER

CURATED_KEY = (
    "order_id",
    "order_date",
    "order_ts",
    "amount",
    "status",
    "landing_source",
    "landing_seq",
    "landing_line",
)


@dataclass(frozen=True)
class Order:
    """A valid order line."""

    order_id: str
    order_ts: str  # ISO 8601 UTC, e.g. 2024-05-01T10:00:00Z
    amount: str = "10.00"
    status: str = "paid"

    def line(self) -> str:
        return f"{self.order_id},C1,{self.order_ts},US,USD,{self.amount},1,{self.status}"

    @property
    def ts(self) -> datetime:
        return datetime.fromisoformat(self.order_ts.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Bad:
    """A line the row rules reject, and the reason they must give."""

    text: str
    reason: str

    def line(self) -> str:
        return self.text


@dataclass(frozen=True)
class Delivery:
    """One file: its source and name, and either lines (with the contract header) or raw bytes."""

    source: str
    name: str
    lines: tuple[Order | Bad, ...] = ()
    raw: bytes | None = None  # used as is (a file that breaks the contract, an empty file, ...)
    outcome: str = "accepted"  # accepted | quarantined | empty
    gzip: bool = False
    eol: str = "\n"

    @property
    def data(self) -> bytes:
        if self.raw is not None:
            body = self.raw
        else:
            body = (self.eol.join([HEADER, *(item.line() for item in self.lines)]) + self.eol).encode()
        return gzip.compress(body, mtime=0) if self.gzip else body

    @property
    def rows_in(self) -> int:
        return len(self.lines)


@dataclass
class Claimed:
    delivery: Delivery
    seq: int
    duplicate_of: int | None
    retracted: bool = False


@dataclass
class Model:
    """What the contract says the lake holds after the same steps."""

    landed: dict[tuple[str, str], Delivery] = field(default_factory=dict)
    ledgers: dict[str, list[Claimed]] = field(default_factory=dict)

    def land(self, delivery: Delivery) -> None:
        self.landed[delivery.source, delivery.name] = delivery

    def claim(self, sources: Sequence[str] | None = None) -> list[Claimed]:
        """What a run claims: every landed file of `sources` (default: all), in key order per source."""
        claimed = []
        for source, name in sorted(self.landed):
            if sources is not None and source not in sources:
                continue
            delivery = self.landed.pop((source, name))
            ledger = self.ledgers.setdefault(source, [])
            digest = hashlib.sha256(delivery.data).digest()
            original = next(
                (
                    c.seq
                    for c in ledger
                    if c.duplicate_of is None and hashlib.sha256(c.delivery.data).digest() == digest
                ),
                None,
            )
            entry = Claimed(delivery, len(ledger) + 1, original)
            ledger.append(entry)
            claimed.append(entry)
        return claimed

    def find(self, source: str, name: str) -> Claimed:
        matches = [c for c in self.ledgers[source] if c.delivery.name == name]
        assert len(matches) == 1, f"{source}/{name} names {len(matches)} deliveries in the model"
        return matches[0]

    def retract(self, source: str, name: str) -> Claimed:
        claimed = self.find(source, name)
        claimed.retracted = True
        return claimed

    def curated(self) -> list[tuple[Any, ...]]:
        """The fold of every accepted, unretracted row by version order, as CURATED_KEY tuples sorted by order_id."""
        best: dict[str, tuple[tuple[Any, ...], tuple[Any, ...]]] = {}
        for source, ledger in self.ledgers.items():
            for claimed in ledger:
                if claimed.retracted or claimed.duplicate_of is not None or claimed.delivery.outcome != "accepted":
                    continue
                for number, item in enumerate(claimed.delivery.lines, start=2):
                    if not isinstance(item, Order):
                        continue
                    version = (item.ts, claimed.seq, source, number)
                    row = (
                        item.order_id,
                        item.ts.date(),
                        item.ts,
                        Decimal(item.amount),
                        item.status,
                        source,
                        claimed.seq,
                        number,
                    )
                    if item.order_id not in best or best[item.order_id][0] < version:
                        best[item.order_id] = (version, row)
        return sorted(row for _, row in best.values())


class Lake(Protocol):
    """A lake the jobs run against, driven the way a deployment drives it."""

    def land(self, delivery: Delivery) -> None: ...

    def command(self, *argv: str) -> dict[str, Any]:
        """Run `python -m etl_jobs ARGV ...` (zones and engine filled in); its result. Fails on a non-zero exit."""
        ...

    def concurrently(self, runs: Sequence[Sequence[Sequence[str]]]) -> list[list[dict[str, Any]]]:
        """Several pipelines at once: each a sequence of commands run in order; the pipelines overlap."""
        ...

    def curated(self) -> list[tuple[Any, ...]]:
        """The curated table as a reader sees it, as CURATED_KEY tuples sorted by order_id."""
        ...


STAGES = ("extract", "transform", "validate", "load")


def stage_commands(run_date: str, sources: Sequence[str], rate: str = "0.5") -> list[list[str]]:
    """One pipeline's commands, as an orchestrator runs them: extract and transform per source, validate, load."""
    commands = [["extract", "--run-date", run_date, "--source", s] for s in sources]
    commands += [["transform", "--run-date", run_date, "--source", s] for s in sources]
    commands += [["validate", "--run-date", run_date, "--max-quarantine-rate", rate], ["load", "--run-date", run_date]]
    return commands


def run_stages(lake: Lake, run_date: str, sources: Sequence[str]) -> dict[str, Any]:
    results = [lake.command(*argv) for argv in stage_commands(run_date, sources)]
    return results[-1]


def check_accounting(result: dict[str, Any]) -> None:
    """rows_in = rows_curated + rows_quarantined for the run and for every file in it."""
    assert result["rows_in"] == result["rows_curated"] + result["rows_quarantined"], result
    assert result["rows_quarantined"] == sum(result["quarantine_reasons"].values()), result
    for item in result["files"]:
        assert item["rows_in"] == item["rows_curated"] + item["rows_quarantined"], item
        assert item["rows_quarantined"] == sum(item["reasons"].values()), item


def check(lake: Lake, model: Model, when: str) -> None:
    assert lake.curated() == model.curated(), f"curated differs from the contract's fold {when}"


# --- the multi-day scenario ---------------------------------------------------------------------------------------


DAY1 = Delivery(
    "orders",
    "day1.csv",
    (
        Order("O1", "2024-05-01T09:00:00Z", "1.00"),
        Order("O2", "2024-05-01T10:00:00Z", "2.00"),
        Order("O3", "2024-05-02T11:00:00Z", "3.00"),
        Bad("O4,C1,2024-05-01T10:00:00Z,US,USD,4.00,1,lost", "invalid_status"),
        Order("O1", "2024-05-01T09:00:00Z", "1.50"),  # same order_ts, later line: wins
        Order("O5", "2024-05-02T08:00:00Z", "5.00", "pending"),
    ),
)
SHOP1 = Delivery(
    "shop",
    "shop1.csv",
    (
        Order("S1", "2024-05-01T12:00:00Z", "7.00"),
        Order("O3", "2024-05-02T10:00:00Z", "99.00"),  # earlier than orders' O3: loses across sources
    ),
)
SEMICOLON = Delivery("orders", "semicolon.csv", raw=b"order_id;amount\nO9;1\nO10;2\n", outcome="quarantined")
DAY2 = Delivery(
    "orders",
    "day2.csv",
    (
        Order("O1", "2024-05-01T15:00:00Z", "1.75", "shipped"),  # update, same date
        Order("O2", "2024-05-03T09:00:00Z", "2.50", "shipped"),  # update that moves O2 to 2024-05-03
        Order("O6", "2024-05-03T10:00:00Z", "6.00"),
        Order("O5", "2024-05-01T08:00:00Z", "0.10"),  # older than the curated O5: superseded
    ),
)
EMPTY_REUPLOAD = Delivery("orders", "day1.csv", raw=b"", outcome="empty")  # same name as a processed file, 0 bytes
SHOP1_AGAIN = Delivery("shop", "shop1-resent.csv", SHOP1.lines)  # byte-identical re-delivery under another name
GZIPPED = Delivery("orders", "day4.csv.gz", (Order("O7", "2024-05-04T10:00:00Z", "7.70"),), gzip=True)
CR_ONLY = Delivery(
    "shop",
    "mac.csv",
    (Order("S2", "2024-05-04T11:00:00Z", "8.80"), Order("O3", "2024-05-04T09:00:00Z", "3.30")),
    eol="\r",
)
PIPELINE_A = Delivery(
    "orders", "day5-a.csv", (Order("O8", "2024-05-05T10:00:00Z"), Order("O6", "2024-05-05T11:00:00Z", "6.60"))
)
PIPELINE_B = Delivery(
    "shop", "day5-b.csv", (Order("S3", "2024-05-05T10:00:00Z"), Order("O8", "2024-05-05T09:00:00Z", "0.80"))
)


def multi_day(lake: Lake) -> Model:
    """The multi-day scenario; asserts the curated table and the accounting after every step. Returns the model."""
    model = Model()

    # Day 1: a good file beside a bad one, and a second source; stage by stage, as an orchestrator runs them.
    for delivery in (DAY1, SEMICOLON, SHOP1):
        lake.land(delivery)
        model.land(delivery)
    model.claim()
    result = run_stages(lake, "2024-05-01", ["orders", "shop"])
    check_accounting(result)
    check(lake, model, "after day 1")
    assert [(f["name"], f["reason"]) for f in result["files_quarantined"]] == [("semicolon.csv", "missing_columns")]
    assert result["quarantine_reasons"] == {"file_rejected": 2, "invalid_status": 1, "superseded": 2}
    # Re-running a stage, or the whole day, changes nothing.
    assert lake.command("load", "--run-date", "2024-05-01")["commit"] is None
    assert lake.command("run", "--run-date", "2024-05-01")["commit"] is None
    check(lake, model, "after re-running day 1")

    # Day 2: updates (one moves partition), an empty re-upload of a processed name, a byte-identical re-delivery.
    for delivery in (DAY2, EMPTY_REUPLOAD, SHOP1_AGAIN):
        lake.land(delivery)
        model.land(delivery)
    model.claim()
    day2 = lake.command("run", "--run-date", "2024-05-02", "--source", "orders")
    day2 = lake.command("run", "--run-date", "2024-05-02", "--source", "shop") | {"orders": day2}
    check_accounting(day2["orders"])
    check_accounting(day2)
    check(lake, model, "after day 2")
    assert day2["orders"]["moves"] == ["2024-05-01->2024-05-03"]
    outcomes = {f["name"]: (f["outcome"], f["rows_curated"]) for f in day2["orders"]["files"]}
    assert outcomes == {"day1.csv": ("empty", 0), "day2.csv": ("accepted", 3)}
    assert [(f["name"], f["outcome"], f["reasons"]) for f in day2["files"]] == [
        ("shop1-resent.csv", "duplicate", {"duplicate_delivery": 2})
    ]

    # Day 3: nothing landed.
    assert lake.command("run", "--run-date", "2024-05-03")["commit"] is None
    check(lake, model, "after a day with nothing landed")

    # Day 4: gzip content, CR-only line endings.
    for delivery in (GZIPPED, CR_ONLY):
        lake.land(delivery)
        model.land(delivery)
    model.claim()
    for source in ("orders", "shop"):
        check_accounting(lake.command("run", "--run-date", "2024-05-04", "--source", source))
    check(lake, model, "after gzip and CR-only files")

    # Day 5: two pipelines on one lake at the same time, each landing's claims racing the other's.
    for delivery in (PIPELINE_A, PIPELINE_B):
        lake.land(delivery)
        model.land(delivery)
    model.claim()
    pipeline = [
        ["extract", "--run-date", "2024-05-05", "--source", "orders"],
        ["extract", "--run-date", "2024-05-05", "--source", "shop"],
        ["transform", "--run-date", "2024-05-05"],
        ["validate", "--run-date", "2024-05-05", "--max-quarantine-rate", "0.5"],
        ["load", "--run-date", "2024-05-05"],
    ]
    both = lake.concurrently([pipeline, pipeline])
    loads = [results[-1] for results in both]
    for result in loads:
        check_accounting(result)
    applied = sorted((f["source"], f["seq"]) for result in loads for f in result["files"])
    assert applied == [("orders", 6), ("shop", 4)], "each delivery applied exactly once across both pipelines"
    check(lake, model, "after two concurrent pipelines")

    # Day 6: retract day 2's file: O1 and O2 return to their day-1 versions (O2 moves back to 2024-05-01).
    model.retract("orders", "day2.csv")
    retracted = lake.command("retract", "--run-date", "2024-05-06", "--file", "landing/orders/day2.csv")
    assert retracted["retracted"] == [{"source": "orders", "seq": 4}]
    assert retracted["moves"] == ["2024-05-03->2024-05-01"]
    check(lake, model, "after retracting day 2")
    assert lake.command("retract", "--run-date", "2024-05-06", "--file", "orders/seq=4")["already_retracted"] is True

    # Day 7: reprocess day 1's deliveries on purpose: same contract, same table; the bad file stays quarantined.
    marked = lake.command("reprocess", "--run-date", "2024-05-07", "--from", "2024-05-01", "--to", "2024-05-01")
    assert sorted((d["source"], d["seq"], d["gen"]) for d in marked["deliveries"]) == [
        ("orders", 1, 2),
        ("orders", 2, 2),
        ("shop", 1, 2),
    ]
    again = lake.command("run", "--run-date", "2024-05-07", "--max-quarantine-rate", "0.5")
    check_accounting(again)
    assert sorted((f["name"], f["outcome"]) for f in again["files"]) == [
        ("day1.csv", "accepted"),
        ("semicolon.csv", "quarantined"),
        ("shop1.csv", "accepted"),
    ]
    check(lake, model, "after reprocessing day 1")
    return model


def curated_rows(frame: Any) -> list[tuple[Any, ...]]:
    """CURATED_KEY tuples from a Polars frame of curated rows (with order_date), sorted."""
    rows = frame.select(*CURATED_KEY).rows()
    return sorted((r[0], r[1] if isinstance(r[1], date) else date.fromisoformat(str(r[1])), *r[2:]) for r in rows)
