"""Streams into the lake, exactly once in curated: Kinesis micro-batches, collected into deliveries of a source.

**Records.** One Kinesis record is one orders CSV record: the fields of `contract.INPUT_COLUMNS` in that order, no
header, UTF-8, optionally ended by a line break (`python -m etl_jobs.produce` writes `\\n`). Producers use the
order id as the partition key, so every version of an order travels through one shard, in order. A record holding
an unclosed quote is read, as in a file, together with the records after it until a quote closes it: send complete
records (the producer quotes fields as RFC 4180 says).

1. **consume** (the Lambda consumer, once per batch the event source mapping delivers: one shard's records in
   sequence order) applies the contract to the micro-batch (`Engine.stage` over the header and its records) and
   writes `staged/streams/S/shard=H/seq=F-L/valid.parquet` (valid rows, readable until collected; landing_seq 0 in
   their lineage: not a delivery yet), the rejected rows with their reasons to
   `quarantine/streams/S/shard=H/seq=F-L/rows.parquet`, and `records.json` last (the records with their sequence
   numbers, and the counts: the marker). Keys come from the shard and the sequence range F-L alone, so a re-delivered
   batch overwrites itself; a retry that starts elsewhere (a bisected half, or a batch from a reported checkpoint)
   writes another range over the same records, and collect drops the repeats.
2. **collect** (the compaction's extract stage): per shard, every staged record above the shard's mark (the highest
   sequence number already in a delivery), each once, in sequence order, becomes one delivery of source S: its raw
   copy (the contract header and the records: the file the batch path would receive) and a ledger entry with its
   landing sequence, all entries in one conditional ledger update (two collects at once: one wins, the other reads
   the ledger again and decides again). Collected micro-batches then leave staged.
3. **transform, validate, load** (the batch stages) stage, judge and commit those deliveries like any file: the same
   merge and commit protocol, the same version order. `compact` runs 2 and 3 in one process.

**Why exactly once, and the Kinesis sequence number as tie-breaker.** Lambda reads a shard in order, one batch at a
time (ParallelizationFactor 1), and moves on only once a batch succeeded or was given up (sent to the on-failure
destination). So when collect sees a micro-batch of a shard, every earlier record of that shard is staged already
or was given up, and a record at or below the mark is a repeat of one already delivered. A shard's deliveries hold
increasing sequence ranges in landing-sequence order, and their lines are in sequence order: after order_ts, the
version order's tie-breakers (the higher landing sequence, then the later line) are the higher Kinesis sequence
number. Curated after compaction equals what the batch engine makes of the same records as one file in sequence
order, re-deliveries, retries and out-of-order arrival included (tests/jobs/test_streams.py). Versions of one order
on two shards (only after resharding, or from producers keyed otherwise) are ordered by order_ts, then by the
delivery collected later.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from etl_jobs import layout, ledger, pipeline, storage
from etl_jobs.contract import INPUT_COLUMNS
from etl_jobs.engines import Engine, Lineage, get_engine
from etl_jobs.ledger import LedgerError, check_source
from etl_jobs.zones import Zones

log = logging.getLogger("etl_jobs")

DEFAULT_SOURCE = "orders-stream"
MARKER = "records.json"
VALID = "valid.parquet"
HEADER = ",".join(INPUT_COLUMNS).encode()


class StreamError(ValueError):
    """A batch that is not one shard's records with decimal sequence numbers."""


@dataclass(frozen=True)
class StreamRecord:
    """One Kinesis record as the consumer receives it."""

    sequence: str
    """Its sequence number: decimal digits, increasing within the shard."""
    data: bytes
    partition_key: str = ""
    arrival: float = 0.0
    """ApproximateArrivalTimestamp (seconds since the epoch)."""

    @property
    def number(self) -> int:
        return int(self.sequence)


@dataclass(frozen=True)
class Batch:
    """One invocation's records: a single shard of one stream (what a Kinesis event source mapping delivers)."""

    stream: str
    shard: str
    records: tuple[StreamRecord, ...]

    def __post_init__(self) -> None:
        if not self.shard or "/" in self.shard or "=" in self.shard:
            raise StreamError(f"shard id {self.shard!r} is not a Kinesis shard id such as 'shardId-000000000000'")
        bad = [r.sequence for r in self.records if not r.sequence.isdigit()]
        if bad:
            raise StreamError(f"sequence numbers must be decimal digits, got {bad[:3]}")

    def ordered(self) -> list[StreamRecord]:
        return sorted(self.records, key=lambda record: record.number)


def _line(data: bytes) -> bytes:
    """A record as one CSV record: its one trailing line break removed."""
    if data.endswith(b"\r\n"):
        return data[:-2]
    return data[:-1] if data.endswith((b"\n", b"\r")) else data


def records_csv(records: Sequence[bytes]) -> bytes:
    """The contract header and `records`, one per line, in the order given: a micro-batch, or a delivery."""
    return b"\n".join([HEADER, *(_line(data) for data in records)]) + b"\n"


# --- consume ------------------------------------------------------------------------------------------------------


def consume(
    zones: Zones, batch: Batch, source: str = DEFAULT_SOURCE, *, engine: Engine | None = None
) -> dict[str, Any]:
    """Apply the contract to one micro-batch and stage it (see the module docstring); returns its counts."""
    check_source(source)
    engine = engine or get_engine()
    records = batch.ordered()
    result: dict[str, Any] = {"stage": "consume", "source": source, "stream": batch.stream, "shard": batch.shard}
    if not records:
        return result | {"records": 0, "rows_in": 0, "rows_valid": 0, "rows_quarantined": 0, "reasons": {}}
    first, last = records[0].sequence, records[-1].sequence
    marker = layout.micro_batch_uri(zones, source, batch.shard, first, last, MARKER)
    staged = engine.stage(records_csv([r.data for r in records]), Lineage(source, 0, 1, marker))
    storage.write(layout.micro_batch_uri(zones, source, batch.shard, first, last, VALID), staged.valid)
    if staged.rows_rejected:
        storage.write(layout.quarantined_micro_batch_uri(zones, source, batch.shard, first, last), staged.rejected)
    counts = {
        "rows_in": staged.rows_in,
        "rows_valid": staged.rows_valid,
        "rows_quarantined": staged.rows_rejected,
        "reasons": staged.reasons,
        "blank_lines": staged.blank_lines,
    }
    body = {
        "source": source,
        "stream": batch.stream,
        "shard": batch.shard,
        "first": first,
        "last": last,
        "consumed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **counts,
        "records": [
            {
                "seq": r.sequence,
                "key": r.partition_key,
                "arrival": r.arrival,
                "data": base64.b64encode(r.data).decode(),
            }
            for r in records
        ],
    }
    storage.write(marker, json.dumps(body, sort_keys=True).encode() + b"\n")
    return result | {"first": first, "last": last, "records": len(records), "micro_batch": marker, **counts}


# --- collect ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Listed:
    uri: str
    shard: str
    first: int
    last: int


def _micro_batches(zones: Zones, source: str) -> list[_Listed]:
    """Every staged micro-batch marker of `source`."""
    folder = layout.streams_folder(zones, source)
    found = []
    for uri in storage.list_files(folder):
        parts = layout.relative(folder, uri).split("/")
        if (
            len(parts) != 3
            or parts[2] != MARKER
            or not parts[0].startswith("shard=")
            or not parts[1].startswith("seq=")
        ):
            continue
        first, _, last = parts[1].removeprefix("seq=").partition("-")
        if first.isdigit() and last.isdigit():
            found.append(_Listed(uri, parts[0].removeprefix("shard="), int(first), int(last)))
    return found


def marks(entries: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Per shard, the highest sequence number already in a delivery of the ledger's `entries`."""
    found: dict[str, int] = {}
    for entry in entries:
        stream = entry.get("stream")
        if isinstance(stream, dict):
            found[stream["shard"]] = max(found.get(stream["shard"], -1), int(stream["last"]))
    return found


def _decode(item: dict[str, Any], uri: str) -> bytes:
    try:
        return base64.b64decode(item["data"], validate=True)
    except (KeyError, TypeError, binascii.Error) as error:
        raise LedgerError(f"the micro-batch {uri} holds a record that is not base64 ({error}); remove it") from error


def _deliveries(
    zones: Zones, source: str, run_date: date, listed: Sequence[_Listed], done: dict[str, int], start_seq: int
) -> list[dict[str, Any]]:
    """One new ledger entry per shard with records above its mark (raw copies written), in sequence order."""
    pending: dict[str, dict[int, bytes]] = {}
    streams: dict[str, str] = {}
    for batch in listed:
        mark = done.get(batch.shard, -1)
        if batch.last <= mark:
            continue
        try:
            body = json.loads(storage.read_bytes(batch.uri))
        except storage.NotFoundError:
            continue  # collected and removed by another collect meanwhile: its ledger update will be seen
        streams[batch.shard] = str(body.get("stream", ""))
        records = pending.setdefault(batch.shard, {})
        for item in body["records"]:
            number = int(item["seq"])
            if number > mark and number not in records:
                records[number] = _decode(item, batch.uri)
    entries = []
    for offset, (shard, records) in enumerate(sorted(pending.items(), key=lambda pair: min(pair[1]))):
        numbers = sorted(records)
        data = records_csv([records[n] for n in numbers])
        first, last = str(numbers[0]), str(numbers[-1])
        name = f"{shard}-{first}-{last}.csv"
        digest = hashlib.sha256(data).hexdigest()
        raw_uri = layout.raw_copy_uri(zones, source, digest, name)
        with contextlib.suppress(storage.PreconditionFailedError):  # the same delivery, written by an earlier attempt
            storage.write(raw_uri, data, if_none_match=True)
        landed = f"kinesis://{streams[shard]}/{shard}/{first}-{last}"
        entries.append(
            {
                "seq": start_seq + offset,
                "source": source,
                "status": "delivered",
                "duplicate_of": None,
                "name": name,
                "sha256": digest,
                "bytes": len(data),
                "landed_uri": landed,
                "landed_identity": [landed, digest, len(data), ""],
                "raw_uri": raw_uri,
                "run_date": run_date.isoformat(),
                "claimed_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "gen": 1,
                "stream": {
                    "name": streams[shard],
                    "shard": shard,
                    "first": first,
                    "last": last,
                    "records": len(numbers),
                },
            }
        )
    return entries


def _remove(zones: Zones, source: str, batch: _Listed) -> None:
    """A collected micro-batch leaves staged: its valid rows, then its marker (a crash in between leaves the marker
    for the next collect to remove). Its rejected rows stay in quarantine."""
    folder = batch.uri.rsplit("/", 1)[0]
    storage.delete(storage.join(folder, VALID))
    storage.delete(batch.uri)


def collect(zones: Zones, run_date: date, source: str = DEFAULT_SOURCE) -> dict[str, Any]:
    """Turn the staged micro-batches of `source` into deliveries (one per shard with new records); an extract-shaped
    result. Deliveries claimed here are staged, judged and committed by transform, validate and load."""
    check_source(source)
    start = time.perf_counter()
    for attempt in range(ledger.CLAIM_ATTEMPTS):
        entries, etag = ledger.read_ledger(zones, source)
        listed = _micro_batches(zones, source)
        added = _deliveries(zones, source, run_date, listed, marks(entries), len(entries) + 1)
        if not added:
            break
        try:
            ledger.write_ledger(zones, source, entries + added, etag)
            break
        except storage.PreconditionFailedError:
            log.info("ledger of %s changed while collecting (attempt %d); reading it again", source, attempt + 1)
            time.sleep(0.05 * (attempt + 1))
    else:
        raise LedgerError(f"could not update the ledger of {source!r} after {ledger.CLAIM_ATTEMPTS} attempts")
    collected = marks(entries + added)
    removed = 0
    for batch in listed:
        if batch.last <= collected.get(batch.shard, -1):
            _remove(zones, source, batch)
            removed += 1
    claimed = [
        {k: e[k] for k in ("seq", "name", "status", "duplicate_of", "sha256", "bytes", "raw_uri")} | e["stream"]
        for e in added
    ]
    log.info(
        "collect %s: %d micro-batches, %d new deliveries (%d records)",
        source,
        len(listed),
        len(added),
        sum(e["stream"]["records"] for e in added),
    )
    return {
        "stage": "extract",
        "run_date": run_date.isoformat(),
        "source": source,
        "micro_batches": len(listed),
        "micro_batches_removed": removed,
        "claimed": claimed,
        "files": [e["raw_uri"] for e in added],
        "duplicates": [],
        "records": sum(e["stream"]["records"] for e in added),
        "duration_s": round(time.perf_counter() - start, 4),
    }


# --- compact ------------------------------------------------------------------------------------------------------


def compact(
    zones: Zones,
    run_date: date,
    source: str = DEFAULT_SOURCE,
    *,
    max_quarantine_rate: float = pipeline.DEFAULT_MAX_QUARANTINE_RATE,
    engine: Engine | None = None,
) -> dict[str, Any]:
    """collect, then transform, validate and load the source's deliveries in one process (`python -m etl_jobs
    compact`); load's manifest with the collected deliveries and the gate's verdict."""
    engine = engine or get_engine()
    collected = collect(zones, run_date, source)
    transformed = pipeline.transform(zones, run_date, source, engine=engine)
    validated = pipeline.validate(zones, run_date, max_quarantine_rate, source, engine=engine)
    loaded = pipeline.load(zones, run_date, source, engine=engine)
    result = dict(loaded)
    result.update(
        stage="compact",
        source=source,
        status="succeeded" if validated["passed"] else "failed",
        passed=validated["passed"],
        errors=validated["failures"],
        quarantine_rate=validated["quarantine_rate"],
        max_quarantine_rate=max_quarantine_rate,
        collected=collected["claimed"],
        records=collected["records"],
        durations_s={
            "collect": collected["duration_s"],
            "transform": transformed["duration_s"],
            "validate": validated["duration_s"],
            "load": loaded["duration_s"],
        },
    )
    return result
