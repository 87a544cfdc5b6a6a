"""The orders pipeline: the stage functions (extract, transform, validate, load), `run`, and the corrections
(`retract`, `reprocess`), with I/O at the edges and the computing done by an engine (`etl_jobs.engines`).

A delivery moves through the zones one stage at a time, each stage picking up what the one before left, so the
stages run in one process (`run`), as separate Lambda invocations or containers, by several pipelines on one lake,
and again after a crash, with the same result:
- extract claims what landed (`etl_jobs.ledger`): raw copy, ledger entry with its landing sequence, out of landing;
- transform stages every claimed delivery (generation) that has no `transform.json` yet: valid rows, rejected rows,
  or the whole file quarantined when it breaks the contract (one bad file never stops the others);
- validate gives every staged delivery without a verdict its verdict (created once: the first one wins): the
  quality gate per file (quarantine rate, at least one valid row), and its quarantined rows to the quarantine zone;
- load commits every delivery with a verdict that curated does not reflect yet (`etl_jobs.table`).
Stages with nothing to do complete with nothing done. Every function returns a small JSON-serialisable dict.
`run_date` is the date a run is for: extract records it in the ledger (`reprocess` selects by it) and load files
its manifest under it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from etl_jobs import layout, ledger, storage, table
from etl_jobs.contract import ContractError, FileReason, Reason
from etl_jobs.engines import Engine, Lineage, get_engine
from etl_jobs.ledger import SourceNameError, check_source
from etl_jobs.zones import Zones

log = logging.getLogger("etl_jobs")

DATASET = "orders"
DEFAULT_MAX_QUARANTINE_RATE = 0.10
DEFAULT_LANDING_PREFIX = layout.DEFAULT_LANDING_PREFIX
# Files read into memory per claim: bounded so a large landing backlog does not exhaust a Lambda or a task.
CLAIM_BATCH_BYTES = 256 * 1024 * 1024

__all__ = [
    "DATASET",
    "DEFAULT_LANDING_PREFIX",
    "DEFAULT_MAX_QUARANTINE_RATE",
    "AmbiguousFileError",
    "FileNotDeliveredError",
    "InputMissingError",
    "SourceNameError",
    "extract",
    "load",
    "reprocess",
    "retract",
    "run",
    "transform",
    "validate",
]


class InputMissingError(ValueError):
    """A file named with `--input` does not exist."""


class FileNotDeliveredError(LookupError):
    """`retract --file KEY` names no delivery."""


class AmbiguousFileError(LookupError):
    """`retract --file KEY` matches several deliveries."""


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, indent=2, sort_keys=True, default=str).encode() + b"\n"


def _check_rate(rate: float) -> float:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"max_quarantine_rate must be between 0 and 1, got {rate}")
    return rate


@dataclass
class _Memo:
    """Bytes this process wrote and will read again (raw copies for transform, valid parts for load)."""

    blobs: dict[str, bytes]

    def write(self, uri: str, data: bytes) -> None:
        storage.write(uri, data)
        self.blobs[uri] = data

    def read(self, uri: str) -> bytes:
        return self.blobs.pop(uri, None) or storage.read_bytes(uri)


# --- extract ------------------------------------------------------------------------------------------------------


def _batches(infos: Sequence[storage.ObjectInfo]) -> Iterator[list[storage.ObjectInfo]]:
    batch: list[storage.ObjectInfo] = []
    size = 0
    for info in infos:
        if batch and size + info.size > CLAIM_BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(info)
        size += info.size
    if batch:
        yield batch


def extract(
    zones: Zones,
    run_date: date,
    source: str = DATASET,
    *,
    inputs: Sequence[str] = (),
    landing_prefix: str = DEFAULT_LANDING_PREFIX,
    memo: _Memo | None = None,
) -> dict[str, Any]:
    """Claim the files landed for `source` (or the `inputs` given, which are left where they are)."""
    check_source(source)
    start = time.perf_counter()
    where = layout.landing_uri(zones, source, landing_prefix)
    if inputs:
        infos = []
        for uri in inputs:
            info = storage.head(uri)
            if info is None:
                raise InputMissingError(f"--input {uri} does not exist; give the path or s3:// URI of a file")
            infos.append(info)
    else:
        infos = ledger.landed_files(zones, source, landing_prefix)
    claimed: list[dict[str, Any]] = []
    for batch in _batches(infos):
        files = []
        for info in batch:
            try:
                files.append(ledger.read_landed(info.uri, remove=not inputs))
            except storage.NotFoundError:
                if inputs:
                    raise InputMissingError(f"--input {info.uri} went away while it was read") from None
                log.info("%s was claimed by another run meanwhile", info.uri)  # listed, then gone
        claimed += ledger.claim(zones, source, files, run_date)
        if memo is not None:
            for landed in files:
                memo.blobs[layout.raw_copy_uri(zones, source, landed.sha256, landed.name)] = landed.data
    result: dict[str, Any] = {
        "stage": "extract",
        "run_date": run_date.isoformat(),
        "source": source,
        "landing_uri": where,
        "landed": [info.uri for info in infos],
        "claimed": [
            {k: e[k] for k in ("seq", "name", "status", "duplicate_of", "sha256", "bytes", "raw_uri")} for e in claimed
        ],
        "files": [e["raw_uri"] for e in claimed if e["status"] == "delivered"],
        "duplicates": [e["name"] for e in claimed if e["status"] == "duplicate"],
        "already_claimed": len(infos) - len(claimed),
        "oldest_waiting_s": 0 if inputs else _oldest_waiting_seconds(zones, landing_prefix),
        "duration_s": round(time.perf_counter() - start, 4),
    }
    log.info(
        "extract %s: %d landed, %d new deliveries, %d duplicate(s), %d claimed earlier",
        source,
        len(infos),
        len(result["files"]),
        len(result["duplicates"]),
        result["already_claimed"],
    )
    return result


# The metric a run's `oldest_waiting_s` is published as (by the extract handler, and by the orchestrated pipelines).
LANDING_WAIT_METRIC = "OldestWaitingLandedFileSeconds"


def _oldest_waiting_seconds(zones: Zones, landing_prefix: str) -> int:
    """How long the oldest file still in landing (any source) has waited: what a landing-age alarm watches. After a
    claim, whatever is left is a file no run claims (an unknown source folder, say) or one landed meanwhile."""
    stamps = [info.modified_at() for info in storage.list_infos(storage.join(zones.raw, landing_prefix) + "/")]
    landed = [stamp for stamp in stamps if stamp is not None]
    if not landed:
        return 0
    return max(0, int((datetime.now(UTC) - min(landed)).total_seconds()))


# --- transform ----------------------------------------------------------------------------------------------------


def _staged_markers(zones: Zones, source: str | None = None) -> dict[tuple[str, int, int], set[str]]:
    """The staged files of every delivery generation: (source, seq, gen) -> names present."""
    folder = layout.staged_source_folder(zones, source) if source else layout.staged_folder(zones)
    base = layout.staged_folder(zones)
    out: dict[tuple[str, int, int], set[str]] = {}
    for uri in storage.list_files(folder):
        parts = layout.relative(base, uri).split("/")
        if len(parts) != 4 or not parts[1].startswith("seq=") or not parts[2].startswith("gen="):
            continue
        key = (parts[0], int(parts[1].removeprefix("seq=")), int(parts[2].removeprefix("gen=")))
        out.setdefault(key, set()).add(parts[3])
    return out


def _transform_one(zones: Zones, engine: Engine, entry: dict[str, Any], memo: _Memo) -> dict[str, Any]:
    source, seq, gen = entry["source"], int(entry["seq"]), int(entry["gen"])
    lineage = Lineage(source, seq, gen, entry["raw_uri"])
    record: dict[str, Any] = {
        "source": source,
        "seq": seq,
        "gen": gen,
        "name": entry["name"],
        "raw_uri": entry["raw_uri"],
        "sha256": entry["sha256"],
        "engine": engine.name,
        "file_reason": None,
        "detail": "",
        "duplicate_of": entry.get("duplicate_of"),
    }
    data = memo.read(entry["raw_uri"])
    try:
        staged = engine.stage(data, lineage)
    except ContractError as error:
        record |= {
            "status": "duplicate" if entry["status"] == "duplicate" else "quarantined",
            "file_reason": error.reason.value,
            "detail": str(error),
            "rows_in": error.rows_in,
            "rows_valid": 0,
            "reasons": {},
            "blank_lines": 0,
            "ignored_columns": [],
        }
        if record["status"] == "quarantined":
            storage.write(layout.quarantined_file_uri(zones, source, seq, gen, entry["name"]), data)
            storage.write(layout.quarantined_file_uri(zones, source, seq, gen, "reason.json"), _json(record))
            log.warning("transform: %s seq %d (%s) quarantined whole: %s", source, seq, entry["name"], error)
        return record
    del data
    record |= {
        "rows_in": staged.rows_in,
        "rows_valid": staged.rows_valid,
        "reasons": staged.reasons,
        "blank_lines": staged.blank_lines,
        "ignored_columns": staged.ignored_columns,
    }
    if entry["status"] == "duplicate":
        record["status"] = "duplicate"
        return record
    record["status"] = "staged" if staged.rows_in else "empty"
    memo.write(layout.staged_uri(zones, source, seq, gen, "valid.parquet"), staged.valid)
    storage.write(layout.staged_uri(zones, source, seq, gen, "rejected.parquet"), staged.rejected)
    return record


def transform(
    zones: Zones, run_date: date, source: str | None = None, *, engine: Engine | None = None, memo: _Memo | None = None
) -> dict[str, Any]:
    """Stage every claimed delivery of `source` (default: every source) that is not staged yet."""
    engine = engine or get_engine()
    memo = memo or _Memo({})
    start = time.perf_counter()
    names = [check_source(source)] if source else ledger.sources(zones)
    done = _staged_markers(zones, source)
    records: list[dict[str, Any]] = []
    for name in names:
        entries, _ = ledger.read_ledger(zones, name)
        for entry in entries:
            key = (name, int(entry["seq"]), int(entry["gen"]))
            if "transform.json" in done.get(key, set()):
                continue
            record = _transform_one(zones, engine, entry, memo)
            storage.write(layout.staged_uri(zones, name, key[1], key[2], "transform.json"), _json(record))
            records.append(record)
    result = {
        "stage": "transform",
        "run_date": run_date.isoformat(),
        "sources": names,
        "engine": engine.name,
        "files": [_file_summary(r) for r in records],
        "files_quarantined": [_file_summary(r) for r in records if r["status"] == "quarantined"],
        "rows_in": sum(int(r["rows_in"]) for r in records),
        "blank_lines": sum(int(r["blank_lines"]) for r in records),
        "ignored_columns": sorted({c for r in records for c in r["ignored_columns"]}),
        "duration_s": round(time.perf_counter() - start, 4),
    }
    log.info("transform: %d deliveries staged (%d rows)", len(records), result["rows_in"])
    return result


def _file_summary(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("source", "seq", "gen", "name", "status", "rows_in", "file_reason", "detail")
    return {k: record.get(k) for k in keys if k in record}


# --- validate -----------------------------------------------------------------------------------------------------


def _verdict(zones: Zones, engine: Engine, record: dict[str, Any], max_rate: float) -> dict[str, Any]:
    source, seq, gen = record["source"], int(record["seq"]), int(record["gen"])
    rows_in, rows_valid = int(record["rows_in"]), int(record["rows_valid"])
    reasons = dict(record["reasons"])
    status = record["status"]
    failures: list[str] = []
    if status == "duplicate":
        outcome, reasons = "duplicate", ({Reason.DUPLICATE_DELIVERY.value: rows_in} if rows_in else {})
    elif status == "quarantined":
        outcome, reasons = "quarantined", ({Reason.FILE_REJECTED.value: rows_in} if rows_in else {})
    elif status == "empty":
        outcome = "empty"
    else:
        rejected = rows_in - rows_valid
        rate = rejected / rows_in if rows_in else 0.0
        if rows_valid == 0:
            failures.append(f"no row of {rows_in} passed the row rules")
        if rate > max_rate:
            failures.append(
                f"quarantine rate {rate:.4f} ({rejected} of {rows_in} rows) is above the maximum {max_rate}"
            )
        outcome = "rejected" if failures else "accepted"
        if rejected:
            rows = storage.read_bytes(layout.staged_uri(zones, source, seq, gen, "rejected.parquet"))
            storage.write(layout.quarantined_rows_uri(zones, source, seq, gen, "rows.parquet"), rows)
        if failures:
            valid = storage.read_bytes(layout.staged_uri(zones, source, seq, gen, "valid.parquet"))
            rows = engine.quarantine_all(valid, Reason.BATCH_REJECTED.value)
            storage.write(layout.quarantined_rows_uri(zones, source, seq, gen, "batch_rejected.parquet"), rows)
            reasons[Reason.BATCH_REJECTED.value] = rows_valid
    quarantined = sum(reasons.values())
    return {
        "source": source,
        "seq": seq,
        "gen": gen,
        "name": record["name"],
        "outcome": outcome,
        "passed": not failures,
        "failures": failures,
        "file_reason": record.get("file_reason") or (FileReason.QUALITY_GATE.value if failures else None),
        "detail": record.get("detail") or "; ".join(failures),
        "rows_in": rows_in,
        "rows_quarantined_before_load": quarantined,
        "reasons": dict(sorted(reasons.items())),
        "max_quarantine_rate": max_rate,
    }


def validate(
    zones: Zones,
    run_date: date,
    max_quarantine_rate: float = DEFAULT_MAX_QUARANTINE_RATE,
    source: str | None = None,
    *,
    engine: Engine | None = None,
) -> dict[str, Any]:
    """Give each staged delivery without a verdict its verdict; `passed` is False when any failed the quality gate.

    A file failing the gate is rejected whole (its valid rows quarantined as `batch_rejected`); the others are not
    affected. A failed gate is a result, not an error: the orchestrator branches on `passed`."""
    engine = engine or get_engine()
    _check_rate(max_quarantine_rate)
    start = time.perf_counter()
    verdicts: list[dict[str, Any]] = []
    for (name, seq, gen), present in sorted(_staged_markers(zones, check_source(source) if source else None).items()):
        if "transform.json" not in present or "verdict.json" in present:
            continue
        record = json.loads(storage.read_bytes(layout.staged_uri(zones, name, seq, gen, "transform.json")))
        verdict = _verdict(zones, engine, record, max_quarantine_rate)
        uri = layout.staged_uri(zones, name, seq, gen, "verdict.json")
        try:
            storage.write(uri, _json(verdict), if_none_match=True)
        except storage.PreconditionFailedError:
            verdict = json.loads(storage.read_bytes(uri))  # another pipeline's validate was first: its verdict holds
        verdicts.append(verdict)
    rows_in = sum(v["rows_in"] for v in verdicts)
    quarantined = sum(v["rows_quarantined_before_load"] for v in verdicts)
    reasons: dict[str, int] = {}
    for verdict in verdicts:
        for reason, count in verdict["reasons"].items():
            reasons[reason] = reasons.get(reason, 0) + count
    failures = [
        f"{v['source']} {v['name']} (seq {v['seq']}): {'; '.join(v['failures'])}" for v in verdicts if v["failures"]
    ]
    result = {
        "stage": "validate",
        "run_date": run_date.isoformat(),
        "passed": not failures,
        "failures": failures,
        "quarantine_rate": round(quarantined / rows_in, 6) if rows_in else 0.0,
        "max_quarantine_rate": max_quarantine_rate,
        "rows_in": rows_in,
        "rows_quarantined": quarantined,
        "reasons": dict(sorted(reasons.items())),
        "sources": sorted({v["source"] for v in verdicts}),
        "files": [{k: v[k] for k in ("source", "seq", "gen", "name", "outcome", "rows_in")} for v in verdicts],
        "files_quarantined": [
            {k: v[k] for k in ("source", "seq", "name", "outcome", "file_reason", "detail")}
            for v in verdicts
            if v["outcome"] in {"quarantined", "rejected"}
        ],
        "duration_s": round(time.perf_counter() - start, 4),
    }
    if failures:
        log.warning("validate: quality gate FAILED: %s", "; ".join(failures))
    else:
        log.info("validate: %d deliveries, quarantine rate %.4f", len(verdicts), result["quarantine_rate"])
    return result


# --- load ---------------------------------------------------------------------------------------------------------


def _pending(zones: Zones, source: str | None, memo: _Memo) -> tuple[list[table.Pending], list[dict[str, Any]]]:
    pending: list[table.Pending] = []
    waiting: list[dict[str, Any]] = []
    for (name, seq, gen), present in sorted(_staged_markers(zones, source).items()):
        if "verdict.json" not in present:
            if "transform.json" in present:
                waiting.append({"source": name, "seq": seq, "gen": gen})
            continue
        verdict = json.loads(storage.read_bytes(layout.staged_uri(zones, name, seq, gen, "verdict.json")))
        valid_uri = layout.staged_uri(zones, name, seq, gen, "valid.parquet")
        pending.append(
            table.Pending(
                source=name,
                seq=seq,
                gen=gen,
                outcome=verdict["outcome"],
                name=verdict["name"],
                raw_uri=json.loads(storage.read_bytes(layout.staged_uri(zones, name, seq, gen, "transform.json")))[
                    "raw_uri"
                ],
                valid_uri=valid_uri if verdict["outcome"] == "accepted" else None,
                rows_in=int(verdict["rows_in"]),
                reasons=dict(verdict["reasons"]),
                detail=verdict.get("detail", ""),
                file_reason=verdict.get("file_reason"),
                memo=memo.blobs.pop(valid_uri, None),
            )
        )
    return pending, waiting


def _commit_result(stage: str, run_date: date, record: dict[str, Any] | None, start: float) -> dict[str, Any]:
    if record is None:
        body: dict[str, Any] = {
            "commit": None,
            "rows_in": 0,
            "rows_curated": 0,
            "rows_quarantined": 0,
            "quarantine_reasons": {},
            "files": [],
            "files_quarantined": [],
            "duplicates": [],
            "retracted": [],
            "partitions": [],
            "moves": [],
            "manifest_uri": None,
        }
    else:
        body = table.manifest(record)
    return {
        "stage": stage,
        "run_date": run_date.isoformat(),
        **body,
        "duration_s": round(time.perf_counter() - start, 4),
    }


def load(
    zones: Zones,
    run_date: date,
    source: str | None = None,
    *,
    engine: Engine | None = None,
    memo: _Memo | None = None,
) -> dict[str, Any]:
    """Commit every validated delivery curated does not reflect yet; deliveries without a verdict wait."""
    engine = engine or get_engine()
    start = time.perf_counter()
    pending, waiting = _pending(zones, check_source(source) if source else None, memo or _Memo({}))
    record = table.commit(zones, engine, run_date, apply=pending)
    result = _commit_result("load", run_date, record, start)
    result["waiting_for_validation"] = waiting
    log.info(
        "load: commit %s: %d rows curated, %d quarantined, partitions %s",
        result["commit"],
        result["rows_curated"],
        result["rows_quarantined"],
        ", ".join(result["partitions"]) or "none",
    )
    return result


# --- run ----------------------------------------------------------------------------------------------------------


def run(
    zones: Zones,
    run_date: date,
    *,
    inputs: Sequence[str] = (),
    source: str = DATASET,
    landing_prefix: str = DEFAULT_LANDING_PREFIX,
    max_quarantine_rate: float = DEFAULT_MAX_QUARANTINE_RATE,
    engine: Engine | None = None,
) -> dict[str, Any]:
    """extract (the `inputs`, or what landed for `source`), transform, validate and load in one process.

    Returns load's manifest with every stage's duration and the gate's verdict: `status` is "succeeded" when the
    quality gate passed for every file, "failed" otherwise (the other files are loaded all the same)."""
    engine = engine or get_engine()
    _check_rate(max_quarantine_rate)
    memo = _Memo({})
    extracted = extract(zones, run_date, source, inputs=inputs, landing_prefix=landing_prefix, memo=memo)
    # Staging writes overlap the next stage's reads: the valid part is handed to load in memory.
    transformed = transform(zones, run_date, None, engine=engine, memo=memo)
    validated = validate(zones, run_date, max_quarantine_rate, engine=engine)
    loaded = load(zones, run_date, engine=engine, memo=memo)
    memo.blobs.clear()
    result = dict(loaded)
    result.update(
        stage="run",
        status="succeeded" if validated["passed"] else "failed",
        errors=validated["failures"],
        passed=validated["passed"],
        quarantine_rate=validated["quarantine_rate"],
        max_quarantine_rate=max_quarantine_rate,
        blank_lines=transformed["blank_lines"],
        ignored_columns=transformed["ignored_columns"],
        claimed=extracted["claimed"],
        durations_s={
            "extract": extracted["duration_s"],
            "transform": transformed["duration_s"],
            "validate": validated["duration_s"],
            "load": loaded["duration_s"],
        },
    )
    return result


# --- corrections --------------------------------------------------------------------------------------------------


def find_delivery(zones: Zones, key: str) -> dict[str, Any]:
    """The delivery `key` names: its landing key or URI, its raw copy's key or URI, or `<source>/seq=<n>`."""
    wanted = key.strip()
    matches = []
    for name in ledger.sources(zones):
        entries, _ = ledger.read_ledger(zones, name)
        for entry in entries:
            names = {
                entry["landed_uri"],
                entry["raw_uri"],
                layout.relative(zones.raw, entry["raw_uri"]),
                f"{name}/seq={entry['seq']}",
            }
            if entry["landed_uri"].startswith(zones.raw.rstrip("/") + "/"):
                names.add(layout.relative(zones.raw, entry["landed_uri"]))
            if wanted in names:
                matches.append(entry)
    if not matches:
        raise FileNotDeliveredError(
            f"no delivery matches {key!r}; give a landing key (e.g. landing/orders/x.csv), a raw key "
            "(deliveries/<source>/sha256=.../<file>) or <source>/seq=<n> as listed in the manifests"
        )
    if len(matches) > 1:
        listed = ", ".join(f"{m['source']}/seq={m['seq']} ({m['raw_uri']})" for m in matches)
        raise AmbiguousFileError(f"{key!r} matches {len(matches)} deliveries: {listed}; name one as <source>/seq=<n>")
    return matches[0]


def retract(zones: Zones, key: str, run_date: date, *, engine: Engine | None = None) -> dict[str, Any]:
    """Remove what one delivery contributed to curated, restoring each order's previous version where one exists.
    The delivery is never applied again (a reprocess skips it too)."""
    engine = engine or get_engine()
    start = time.perf_counter()
    entry = find_delivery(zones, key)
    record = table.commit(zones, engine, run_date, retract=[(entry["source"], int(entry["seq"]))], kind="retract")
    result = _commit_result("retract", run_date, record, start)
    result["delivery"] = {k: entry[k] for k in ("source", "seq", "name", "raw_uri", "landed_uri", "run_date")}
    result["already_retracted"] = record is None
    return result


def reprocess(
    zones: Zones, start_date: date, end_date: date, run_date: date, source: str | None = None
) -> dict[str, Any]:
    """Mark the deliveries claimed from `start_date` to `end_date` for processing again (a new generation each);
    transform, validate and load then apply them as if new, replacing what their earlier generation contributed."""
    if end_date < start_date:
        raise ValueError(f"--to {end_date} is before --from {start_date}; give the range in order")
    start = time.perf_counter()
    changed = ledger.reprocess(zones, start_date, end_date, [check_source(source)] if source else [])
    return {
        "stage": "reprocess",
        "run_date": run_date.isoformat(),
        "from": start_date.isoformat(),
        "to": end_date.isoformat(),
        "deliveries": [{k: e[k] for k in ("source", "seq", "gen", "name", "run_date")} for e in changed],
        "next": "run transform, validate and load (or `run`) to apply them",
        "duration_s": round(time.perf_counter() - start, 4),
    }


def write_result(uri: str, result: dict[str, Any]) -> None:
    storage.write(uri, _json(result))
