"""The SQL engine: the orders contract computed by PostgreSQL (Aurora PostgreSQL when deployed), `--engine postgres`.

Implements `etl_jobs.engines.Engine` (see there for the protocol). Every rule of the contract runs as SQL in the
database, in the .sql files under `etl_jobs/sql/` (`stage/`, `merge/`, in file order) and the functions of the
schema's migrations (`sql/migrations/`, applied by `python -m etl_jobs migrate --engine postgres`). This module only
moves data: it frames a file into physical lines, loads them, runs the files, and turns the rows that come back into
the protocol's Parquet (with Polars, which every runner of the job code already has). The database is reached
through `etl_jobs.database` (one connection and one transaction per call; see there for the transport).

The ingest form keeps every byte of a hostile line: gzip undone, a UTF-8 byte order mark dropped, CR-only line endings
read as LF, then the bytes are split at LF (the CR of a CRLF removed) and each physical line is loaded by binary COPY
as `bytea` with its number. UTF-8 validity, NUL bytes (which `text` cannot hold), control characters, records that
span lines, the header, fields, normalisation and every row rule are judged in SQL; a rejected row's exact bytes
come back as `bytea` (the quarantine Parquet holds them as text, with U+FFFD for bytes that are not UTF-8 and U+0001
for NUL, as the single-node engine writes them; the raw zone keeps the exact file).

Working data lives in temporary tables of the call's transaction (`line`, `record`, `staged`; `incoming`,
`current_row`, `curated` keyed by order_id, ...), so concurrent calls never see each other and a call that dies
leaves nothing behind; the lake stays the table of record. What each call computed is appended to
`etl.stage_accounting` / `etl.merge_accounting`, whose CHECK constraints refuse counts that do not add up.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import polars as pl

from etl_jobs import database as databases
from etl_jobs.contract import (
    AMOUNT_MAX,
    CURATED_COLUMNS,
    FIELD_MAX_CHARS,
    INDEX_COLUMNS,
    INPUT_COLUMNS,
    LINEAGE_COLUMNS,
    ORDER_YEARS,
    QUARANTINE_COLUMNS,
    RECORD_MAX_CHARS,
    STATUSES,
    ContractError,
    FileReason,
    Reason,
    countries,
    currencies,
    usd_rates,
)
from etl_jobs.contract.orders import AMOUNT_PRECISION, AMOUNT_SCALE
from etl_jobs.engines import Lineage, MergeResult, PartitionWrite, StagedFile, TableView, open_bytes
from etl_jobs.engines import postgres_migrations as migrations

BOM = b"\xef\xbb\xbf"
EPOCH = date(1970, 1, 1)
AMOUNT_TYPE = pl.Decimal(AMOUNT_PRECISION, AMOUNT_SCALE)
TS_TYPE = pl.Datetime("us", "UTC")
# The protocol's Parquet: the same column types as every engine writes (a test compares them with the Polars
# engine's), internal objects (staged parts, indexes) with lz4 and no statistics, partitions with zstd and statistics.
CURATED_SCHEMA: dict[str, pl.DataType] = {
    "order_id": pl.String(),
    "customer_id": pl.String(),
    "order_ts": TS_TYPE,
    "country": pl.String(),
    "currency": pl.String(),
    "amount": AMOUNT_TYPE,
    "amount_usd": AMOUNT_TYPE,
    "quantity": pl.Int32(),
    "status": pl.String(),
    "order_date": pl.Date(),
}
LINEAGE_SCHEMA: dict[str, pl.DataType] = {
    "landing_source": pl.String(),
    "landing_seq": pl.Int64(),
    "landing_line": pl.Int64(),
}
VALID_SCHEMA: dict[str, pl.DataType] = {**CURATED_SCHEMA, **LINEAGE_SCHEMA}
QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "landing_source": pl.String(),
    "landing_seq": pl.Int64(),
    "source_file": pl.String(),
    "line": pl.Int64(),
    "reason": pl.String(),
    "raw_line": pl.String(),
    **CURATED_SCHEMA,
}
INDEX_SCHEMA: dict[str, pl.DataType] = {name: VALID_SCHEMA[name] for name in INDEX_COLUMNS}
PARTITION_COLUMNS = [c for c in (*CURATED_COLUMNS, *LINEAGE_COLUMNS) if c != "order_date"]
INTERNAL_PARQUET: dict[str, Any] = {"compression": "lz4", "statistics": False}
PUBLISHED_PARQUET: dict[str, Any] = {"compression": "zstd", "compression_level": 1, "statistics": True}

# Rows as the SQL files exchange them through CSV: order_ts in microseconds since the epoch, order_date in days.
_WIRE_SCHEMA: dict[str, pl.DataType] = {
    **CURATED_SCHEMA,
    "order_ts": pl.Int64(),
    "order_date": pl.Int32(),
    **LINEAGE_SCHEMA,
}
_STAGED_WIRE: dict[str, pl.DataType] = {**{k: _WIRE_SCHEMA[k] for k in CURATED_COLUMNS}, "landing_line": pl.Int64()}
_ROW_COLUMNS = [*CURATED_COLUMNS, *LINEAGE_COLUMNS]
# Kinds of rows in merge/01_tables.sql's `loaded`.
_CURRENT, _LATE, _HISTORY = 0, 1, 2

assert list(CURATED_SCHEMA) == list(CURATED_COLUMNS) and list(LINEAGE_SCHEMA) == list(LINEAGE_COLUMNS)
assert list(QUARANTINE_SCHEMA)[: len(QUARANTINE_COLUMNS)] == list(QUARANTINE_COLUMNS)


@cache
def sql(name: str) -> str:
    """The text of `etl_jobs/sql/<name>` (package data: works from a wheel, a zip or an image)."""
    return resources.files("etl_jobs").joinpath("sql", *name.split("/")).read_text(encoding="utf-8")


def physical_lines(data: bytes) -> list[bytes]:
    """The file's physical lines, as the contract frames them: a UTF-8 BOM dropped, CR-only line endings read as LF,
    split at LF, the CR of a CRLF removed (also on a last line without LF); no line after a final LF."""
    if data.startswith(BOM):
        data = data[len(BOM) :]
    if b"\r" in data and b"\n" not in data:
        data = data.replace(b"\r", b"\n")
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    if b"\r" in data:
        lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    return lines


@cache
def _reference() -> tuple[list[str], list[str], list[Decimal | None], list[str]]:
    """The contract's reference data as the job code ships it (passed to every call: the rates of this code)."""
    rates = usd_rates()
    codes = sorted(currencies())
    return sorted(countries()), codes, [rates.get(code) for code in codes], sorted(STATUSES)


def _to_parquet(frame: pl.DataFrame, tag: str | None = None, *, internal: bool = False) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(
        buffer, **(INTERNAL_PARQUET if internal else PUBLISHED_PARQUET), metadata={"etl_commit": tag} if tag else None
    )
    return buffer.getvalue()


def _from_parquet(data: bytes, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    frame = pl.read_parquet(io.BytesIO(data))
    return frame.select(pl.col(name).cast(dtype) for name, dtype in schema.items())


def _read_wire(data: bytes, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Rows the database sent as CSV (no header), typed: the wire's integers become timestamps and dates."""
    if not data:
        frame = pl.DataFrame(schema=schema)
    else:
        frame = pl.read_csv(io.BytesIO(data), has_header=False, new_columns=list(schema), schema=schema)
    return frame.with_columns(
        *([pl.col("order_ts").cast(TS_TYPE)] if "order_ts" in schema else []),
        *([pl.col("order_date").cast(pl.Date)] if "order_date" in schema else []),
    )


def _write_wire(frame: pl.DataFrame, columns: Sequence[str]) -> bytes:
    """Rows for COPY ... FROM STDIN (FORMAT csv): timestamps as microseconds, dates as days, text quoted ("" is not
    NULL), NULL as an empty unquoted field."""
    return (
        frame.select(
            *(
                pl.col(c).dt.epoch("us")
                if c == "order_ts"
                else (pl.col(c).cast(pl.Int32) if c == "order_date" else pl.col(c))
                for c in columns
            )
        )
        .write_csv(include_header=False, quote_style="non_numeric", null_value="")
        .encode()
    )


def _lossy_text(raw: bytes) -> str:
    """Bytes as the quarantine's text: U+FFFD for what is not UTF-8, U+0001 for NUL (as the single-node engine)."""
    return raw.decode("utf-8", "replace").replace("\x00", "\x01")


def _header_error(names: list[str], rows_in: int) -> ContractError | None:
    missing = [c for c in INPUT_COLUMNS if c not in names]
    if missing:
        hint = ""
        if any(_looks_like_a_timestamp(value) for value in names):
            hint = " (the first line looks like data: the header row may be missing)"
        return ContractError(
            f"the header is missing required column(s) {missing}{hint}; expected a header row naming "
            f"{list(INPUT_COLUMNS)} in any order, comma-separated, got {names}",
            FileReason.MISSING_COLUMNS,
            rows_in,
        )
    duplicated = sorted({c for c in names if names.count(c) > 1})
    if duplicated:
        return ContractError(
            f"the header names column(s) {duplicated} more than once; each column must appear once",
            FileReason.DUPLICATE_COLUMNS,
            rows_in,
        )
    return None


def _looks_like_a_timestamp(value: str) -> bool:
    import re

    return re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ].*", value.strip()) is not None


def _epoch_micros(moment: datetime) -> int:
    """Microseconds since 1970-01-01T00:00:00Z (exact for every year Python represents)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class PostgresEngine:
    """The orders contract in PostgreSQL (see `etl_jobs.engines` for what each method promises).

    `database` is where it runs (default: `etl_jobs.database.from_environment(dsn)`: --dsn, ETL_DATABASE_DSN or
    the deployed cluster's settings). Safe to share between threads: each call opens its own connection."""

    name = "postgres"

    def __init__(self, database: databases.Database | None = None, dsn: str | None = None) -> None:
        self.database = database if database is not None else databases.from_environment(dsn)

    def migrate(self) -> dict[str, Any]:
        """Bring the database's etl schema to this code's version (idempotent)."""
        return migrations.migrate(self.database)

    # --- stage ----------------------------------------------------------------------------------------------------

    def stage(self, data: bytes, lineage: Lineage) -> StagedFile:
        lines = physical_lines(open_bytes(data))
        del data
        with self.database.session() as session:
            migrations.check(session)
            session.execute(sql("stage/01_tables.sql"))
            session.copy_in(
                "COPY line (n, raw) FROM STDIN (FORMAT binary)", enumerate(lines, start=1), ["int4", "bytea"]
            )
            del lines
            session.execute(sql("stage/02_records.sql"))
            ((rows_in, n_lines, blank, continuation, header_line, header_bad, header_fault, names),) = session.query(
                sql("stage/03_header.sql")
            )
            params = self._stage_params(rows_in, header_line, header_bad, header_fault, names)
            session.execute(sql("stage/04_staged.sql"), params)
            valid_csv = session.copy_out(sql("stage/05_valid.sql"))
            rejected_rows = session.query(sql("stage/06_rejected.sql"))
            ((counted_in, counted_valid, reasons),) = session.query(
                sql("stage/07_accounting.sql"),
                {
                    "source": lineage.source,
                    "seq": lineage.seq,
                    "gen": lineage.gen,
                    "file": lineage.file,
                    "lines": n_lines,
                    "header_lines": 0 if header_line is None else 1,
                    "blank_lines": blank,
                    "continuation_lines": continuation,
                },
            )
        valid = _read_wire(valid_csv, _STAGED_WIRE).with_columns(
            pl.lit(lineage.source, pl.String).alias("landing_source"),
            pl.lit(lineage.seq, pl.Int64).alias("landing_seq"),
        )
        valid = valid.select(pl.col(c).cast(t) for c, t in VALID_SCHEMA.items())
        rejected = self._rejected_frame(rejected_rows, lineage)
        return StagedFile(
            rows_in=int(counted_in),
            rows_valid=int(counted_valid),
            valid=_to_parquet(valid, internal=True),
            rejected=_to_parquet(rejected, internal=True),
            reasons=dict(sorted((str(k), int(v)) for k, v in reasons.items())),
            blank_lines=int(blank),
            ignored_columns=[c for c in (names or []) if c not in INPUT_COLUMNS],
        )

    @staticmethod
    def _stage_params(
        rows_in: int, header_line: int | None, header_bad: bool | None, fault: str | None, names: list[str] | None
    ) -> dict[str, Any]:
        """The parameters of stage/04_staged.sql, once the header passed the contract's file rules."""
        if header_line is None:  # no record at all: an empty file (nothing to judge; the positions are unused)
            positions = {name: i for i, name in enumerate(INPUT_COLUMNS, start=1)}
            width, header_line = len(INPUT_COLUMNS), 0
        else:
            if header_bad:
                raise ContractError(
                    "the header row contains bytes that are not UTF-8; the file must be UTF-8 encoded",
                    FileReason.NOT_UTF8_HEADER,
                    rows_in,
                )
            if fault is not None:
                raise ContractError(
                    f"the header row is not valid CSV: {fault.replace('_', ' ')}", FileReason.BAD_HEADER, rows_in
                )
            header = list(names or [])
            error = _header_error(header, rows_in)
            if error is not None:
                raise error
            positions = {name: header.index(name) + 1 for name in INPUT_COLUMNS}
            width = len(header)
        countries, currency_codes, rates, statuses = _reference()
        return {
            "header_line": header_line,
            "width": width,
            "record_max": RECORD_MAX_CHARS,
            "amount_max": AMOUNT_MAX,
            # The contract's years, as the bounds of order_ts in microseconds since the epoch (UTC).
            "order_ts_min": _epoch_micros(datetime(ORDER_YEARS[0], 1, 1, tzinfo=UTC)),
            "order_ts_end": _epoch_micros(datetime(ORDER_YEARS[1], 12, 31, tzinfo=UTC)) + 86_400_000_000,
            **positions,
            **{f"max_{name}": limit for name, limit in FIELD_MAX_CHARS.items()},
            "countries": countries,
            "currencies": currency_codes,
            "usd_rates": rates,
            "statuses": statuses,
        }

    @staticmethod
    def _rejected_frame(rows: list[tuple[Any, ...]], lineage: Lineage) -> pl.DataFrame:
        """Quarantine rows from stage/08_rejected.sql's result (raw bytes decoded as the quarantine's text)."""
        wire: dict[str, pl.DataType] = {
            "line": pl.Int64(),
            "reason": pl.String(),
            "raw_line": pl.Binary(),
            **{k: pl.String() for k in ("order_id", "customer_id")},
            "order_ts": pl.Int64(),
            **{k: pl.String() for k in ("country", "currency", "amount", "amount_usd")},
            "quantity": pl.Int32(),
            "status": pl.String(),
            "order_date": pl.Int32(),
        }
        frame = pl.DataFrame(rows, schema=wire, orient="row")
        return frame.select(
            pl.lit(lineage.source, pl.String).alias("landing_source"),
            pl.lit(lineage.seq, pl.Int64).alias("landing_seq"),
            pl.lit(lineage.file, pl.String).alias("source_file"),
            "line",
            "reason",
            pl.Series("raw_line", [_lossy_text(raw) for raw in frame["raw_line"].to_list()], dtype=pl.String),
            "order_id",
            "customer_id",
            pl.col("order_ts").cast(TS_TYPE),
            "country",
            "currency",
            pl.col("amount").cast(AMOUNT_TYPE),
            pl.col("amount_usd").cast(AMOUNT_TYPE),
            "quantity",
            "status",
            pl.col("order_date").cast(pl.Date),
        ).cast(QUARANTINE_SCHEMA)  # type: ignore[arg-type]

    # --- quarantine_all -------------------------------------------------------------------------------------------

    def quarantine_all(self, valid: bytes, reason: str) -> bytes:
        """Valid rows as quarantine rows with `reason`: a reshaping of what staging produced (no rule to apply)."""
        rows = _from_parquet(valid, VALID_SCHEMA)
        return _to_parquet(_as_quarantine(rows, reason))

    # --- merge ----------------------------------------------------------------------------------------------------

    def merge(
        self, incoming: Sequence[bytes], table: TableView, drop: Collection[tuple[str, int]], tag: str
    ) -> MergeResult:
        new = _concat([_from_parquet(part, VALID_SCHEMA) for part in incoming])
        index = _concat(
            [
                _from_parquet(data, INDEX_SCHEMA).with_columns(order_date=pl.lit(day, pl.Date))
                for day, data in table.index().items()
            ],
            {**INDEX_SCHEMA, "order_date": pl.Date()},
        )
        with self.database.session() as session:
            migrations.check(session)
            session.execute(sql("merge/01_tables.sql"))
            session.copy_in_csv(
                f"COPY incoming ({', '.join([*_ROW_COLUMNS, 'ordinal'])}) FROM STDIN (FORMAT csv)",
                _write_wire(new.with_row_index("ordinal"), [*_ROW_COLUMNS, "ordinal"]),
            )
            session.copy_in_csv(
                "COPY partition_index (order_id, landing_source, landing_seq, order_date) FROM STDIN (FORMAT csv)",
                _write_wire(index, [*INDEX_COLUMNS, "order_date"]),
            )
            session.copy_in(
                "COPY dropped (landing_source, landing_seq) FROM STDIN (FORMAT binary)",
                sorted(set(drop)),
                ["text", "int8"],
            )
            touched = [_day(n) for (n,) in session.query(sql("merge/02_touched.sql"))]
            self._load(session, _CURRENT, self._partitions(table, touched))
            if drop:
                affected = [order_id for (order_id,) in session.query(sql("merge/03_affected.sql"))]
                if affected:
                    self._load(session, _HISTORY, self._history(table, affected))
            session.execute(sql("merge/04_merge.sql"))
            late = [_day(n) for (n,) in session.query(sql("merge/05_late_dates.sql"))]
            if late:
                self._load(session, _LATE, self._partitions(table, late))
                session.execute(sql("merge/06_add_late.sql"))
            changes = session.query(sql("merge/07_changes.sql"))
            changed = [_day(n) for moved_from, n in changes if moved_from is None]
            moves = [(_day(a), _day(b)) for a, b in changes if a is not None]
            outcome = session.query(sql("merge/08_accounting.sql"), {"tag": tag})
            superseded_csv = session.copy_out(sql("merge/09_superseded.sql"))
            partitions_csv = session.copy_out(
                sql("merge/10_partitions.sql"), {"dates": [(day - EPOCH).days for day in changed]}
            )
        won = {(str(s), int(q)): int(current) for s, q, current, _ in outcome}
        superseded_counts = {(str(s), int(q)): int(lost) for s, q, _, lost in outcome if lost}
        superseded: dict[tuple[str, int], bytes] = {}
        losers = _read_wire(superseded_csv, _WIRE_SCHEMA).select(pl.col(c).cast(t) for c, t in VALID_SCHEMA.items())
        for (source, seq), rows in losers.partition_by(
            "landing_source", "landing_seq", as_dict=True, include_key=True
        ).items():
            superseded[(str(source), int(seq))] = _to_parquet(_as_quarantine(rows, Reason.SUPERSEDED.value))
        rows_by_day: dict[date, pl.DataFrame] = {
            day: rows
            for (day,), rows in _read_wire(partitions_csv, _WIRE_SCHEMA)
            .select(pl.col(c).cast(t) for c, t in VALID_SCHEMA.items())
            .partition_by("order_date", as_dict=True, include_key=True)
            .items()
        }
        writes = []
        for day in changed:
            day_rows = rows_by_day.get(day)
            if day_rows is None or day_rows.height == 0:
                writes.append(PartitionWrite(day, None, None, 0))
                continue
            data = _to_parquet(day_rows.select(PARTITION_COLUMNS), tag)
            index_bytes = _to_parquet(day_rows.select(INDEX_COLUMNS), tag, internal=True)
            writes.append(PartitionWrite(day, data, index_bytes, day_rows.height))
        return MergeResult(
            partitions=writes, moves=moves, won=won, superseded=superseded, superseded_counts=superseded_counts
        )

    @staticmethod
    def _partitions(table: TableView, days: Sequence[date]) -> pl.DataFrame:
        frames = []
        for day in days:
            data = table.partition(day)
            if data is not None:
                frame = pl.read_parquet(io.BytesIO(data)).with_columns(order_date=pl.lit(day, pl.Date))
                frames.append(frame.select(pl.col(c).cast(t) for c, t in VALID_SCHEMA.items()))
        return _concat(frames)

    @staticmethod
    def _history(table: TableView, affected: list[str]) -> pl.DataFrame:
        """Earlier versions of the affected orders: only their rows of each applied delivery are sent."""
        wanted = pl.Series(affected, dtype=pl.String).implode()
        return _concat(
            [_from_parquet(part, VALID_SCHEMA).filter(pl.col("order_id").is_in(wanted)) for part in table.history()]
        )

    @staticmethod
    def _load(session: databases.Session, kind: int, rows: pl.DataFrame) -> None:
        columns = [*_ROW_COLUMNS, "ordinal", "kind"]
        session.copy_in_csv(
            f"COPY loaded ({', '.join(columns)}) FROM STDIN (FORMAT csv)",
            _write_wire(rows.with_row_index("ordinal").with_columns(kind=pl.lit(kind, pl.Int16)), columns),
        )


def _day(days: int) -> date:
    return EPOCH + timedelta(days=int(days))


def _concat(frames: list[pl.DataFrame], schema: dict[str, pl.DataType] | None = None) -> pl.DataFrame:
    if not frames:
        return pl.DataFrame(schema=schema or VALID_SCHEMA)
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")


def _as_quarantine(rows: pl.DataFrame, reason: str) -> pl.DataFrame:
    """Valid rows (VALID_SCHEMA) as quarantine rows: the record's line, no file name or raw text, `reason`."""
    return rows.select(
        pl.col("landing_source"),
        pl.col("landing_seq"),
        pl.lit(None, pl.String).alias("source_file"),
        pl.col("landing_line").alias("line"),
        pl.lit(reason, pl.String).alias("reason"),
        pl.lit(None, pl.String).alias("raw_line"),
        *(pl.col(c) for c in CURATED_COLUMNS),
    ).cast(QUARANTINE_SCHEMA)  # type: ignore[arg-type]
