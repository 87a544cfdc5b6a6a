"""Engines: what computes the orders contract. The rest of `etl_jobs` (storage, zones, the ledger and claims, the commit
protocol, manifests, accounting checks, the CLI) is engine-neutral and talks to an engine only through `Engine` below.

Choosing one: `python -m etl_jobs <command> --engine NAME` (default `polars`), `ENGINES` maps each name to the import
path of its class, imported only when chosen (a Polars-only runtime never imports Spark). `get_engine(name)` returns an
instance; an unknown name is a usage error listing `available()`.

Implementing one (Spark, PostgreSQL, ...): a class with a `name` and the three methods below, registered in `ENGINES`.
Data crosses the protocol as Parquet bytes with the column sets of `etl_jobs.contract`, so an engine may hold it in
any form in between (a Spark engine writes the bytes to local files; a SQL engine loads them into tables):

- `stage(data, lineage) -> StagedFile`: parse one delivered file (`data`: its bytes, gzip already undone or not:
  see `open_bytes`), normalise it and apply the row rules. `StagedFile.valid` holds the rows that passed, as
  CURATED_COLUMNS + LINEAGE_COLUMNS (landing_source/landing_seq from `lineage`, landing_line = the record's first
  physical line, 1-based, header = line 1); `StagedFile.rejected` the others as QUARANTINE_COLUMNS + the contract
  columns (null where a structural fault makes them untrustworthy) with the first failing `Reason`. Blank lines are
  not records. Raise `contract.ContractError` (with its FileReason and record count) when the file as a whole
  cannot be read; it is then quarantined whole. Must be deterministic: the same bytes give the same rows.
- `quarantine_all(valid, reason) -> bytes`: the valid rows of a file turned into quarantine rows with `reason`
  (used when a file fails the quality gate: its valid rows are kept as `batch_rejected`).
- `merge(incoming, table, drop, tag) -> MergeResult`: fold new rows into curated. `incoming` are `valid` parts of the
  deliveries being applied; `drop` are (source, seq) pairs whose rows must leave curated (a retraction, or an older
  generation being replaced); `table` reads the current state (`TableView`: the per-partition index, partition
  data, and for `drop` the history of every other applied delivery, to restore the previous version of an order).
  Version order, per order_id: later order_ts wins; on equal order_ts the higher landing_seq; then the source name;
  then the later landing_line. Return the new content of every partition whose rows change (data + index Parquet,
  or None for a partition left empty), the moves (old date, new date) of orders that changed partition, and per
  incoming delivery the rows now current and the rows that lost (as quarantine rows with reason `superseded`).
  Partition rows are CURATED_COLUMNS without order_date (it is in the path) + LINEAGE_COLUMNS; the index holds
  INDEX_COLUMNS. Write `tag` into the Parquet key-value metadata (`etl_commit`): it makes every commit's objects
  distinct bytes, which the commit protocol's conditional writes rely on.

The engine never touches storage: the caller reads and writes every object, and owns the commit protocol
(`etl_jobs.table`), so every engine gets exactly-once claims, atomic partition publication and crash recovery alike.
"""

from __future__ import annotations

import gzip
import importlib
import inspect
import zlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from etl_jobs.contract import ContractError, FileReason

DEFAULT_ENGINE = "polars"
ENGINES: dict[str, str] = {
    "polars": "etl_jobs.engines.polars_engine:PolarsEngine",
    "spark": "etl_jobs.engines.spark_engine:SparkEngine",
    "postgres": "etl_jobs.engines.postgres_engine:PostgresEngine",
}

GZIP_MAGIC = b"\x1f\x8b"


class UnknownEngineError(ValueError):
    """`--engine` named an engine that is not registered."""


class EngineOptionError(ValueError):
    """An option was given to an engine that does not take it (e.g. `--dsn` with `--engine polars`)."""


@dataclass(frozen=True)
class Lineage:
    """Which delivery a file is: its source, landing sequence and generation, and its raw copy (for messages)."""

    source: str
    seq: int
    gen: int = 1
    file: str = ""


@dataclass
class StagedFile:
    """One file after `Engine.stage`: valid and rejected rows as Parquet bytes, and the counts that add up."""

    rows_in: int
    rows_valid: int
    valid: bytes
    rejected: bytes
    reasons: dict[str, int]
    blank_lines: int = 0
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def rows_rejected(self) -> int:
        return sum(self.reasons.values())


@dataclass(frozen=True)
class PartitionWrite:
    """The new content of one curated partition: data and index Parquet, both None when the partition is now empty."""

    day: date
    data: bytes | None
    index: bytes | None
    rows: int


@dataclass
class MergeResult:
    partitions: list[PartitionWrite]
    moves: list[tuple[date, date]]
    won: dict[tuple[str, int], int]
    superseded: dict[tuple[str, int], bytes]
    superseded_counts: dict[tuple[str, int], int]


class TableView(Protocol):
    """What `Engine.merge` may read of the current curated table (the caller records what was read)."""

    def index(self) -> Mapping[date, bytes]:
        """Every partition's index Parquet, by date."""
        ...

    def partition(self, day: date) -> bytes | None:
        """A partition's data Parquet, or None when it does not exist."""
        ...

    def history(self) -> Iterable[bytes]:
        """The valid parts of every applied, unretracted delivery not being dropped (for restoring versions)."""
        ...


class Engine(Protocol):
    name: str

    def stage(self, data: bytes, lineage: Lineage) -> StagedFile: ...

    def quarantine_all(self, valid: bytes, reason: str) -> bytes: ...

    def merge(
        self, incoming: Sequence[bytes], table: TableView, drop: Collection[tuple[str, int]], tag: str
    ) -> MergeResult: ...


def open_bytes(data: bytes) -> bytes:
    """The file's bytes with gzip undone (`.csv.gz`, or gzip content however named); other bytes unchanged."""
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise ContractError(
            f"the file starts like gzip but does not decompress ({error}); send it intact or uncompressed",
            FileReason.BAD_GZIP,
        ) from error


def available() -> list[str]:
    return sorted(ENGINES)


def get_engine(name: str = DEFAULT_ENGINE, **options: object) -> Engine:
    """An instance of the engine registered as `name` (imported on first use). `options` are the engine's own
    settings (the postgres engine's `dsn`); an engine that takes none refuses them."""
    target = ENGINES.get(name)
    if target is None:
        raise UnknownEngineError(f"unknown engine {name!r}; available: {', '.join(available())}")
    module_name, _, class_name = target.partition(":")
    factory: Callable[..., Engine] = getattr(importlib.import_module(module_name), class_name)
    accepted = set(inspect.signature(factory).parameters)
    refused = sorted(set(options) - accepted)
    if refused:
        raise EngineOptionError(
            f"--engine {name} takes no {', '.join('--' + o.replace('_', '-') for o in refused)}"
            + (f" (it takes {', '.join('--' + o.replace('_', '-') for o in sorted(accepted))})" if accepted else "")
        )
    return factory(**options)
