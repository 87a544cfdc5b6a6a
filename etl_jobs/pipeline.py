"""The orders pipeline as four stage functions plus `run`, with I/O at the edges.

Each stage reads its input from the zones, does its work with the engine (`etl_jobs.engine`) and writes its output
and a small JSON record of what it did to the zones, so the stages can run in one process (`run`), in separate Lambda
invocations or containers, or as Step Functions tasks. Every function returns a small JSON-serialisable dict.

Transform works per source (one staged part each, so per-source transforms can run in parallel); validate dedupes
across every part of the run date and load publishes them all (see the layout in `etl_jobs`).

A failed validation is a result (`passed: False`), not an exception, so an orchestrator can branch on it; `load`
refuses to run when the run's validation did not pass. The manifest is written whenever a run ends: by `validate`
when it fails, by `load` when it succeeds, by `run` when any stage fails.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from typing import Any

import polars as pl

from etl_jobs import storage
from etl_jobs.contract import CURATED_COLUMNS, STRUCTURAL_REASONS, ContractError, Reason
from etl_jobs.engine import STAGED_SCHEMA, dedupe, transform_files
from etl_jobs.zones import Zones

log = logging.getLogger("etl_jobs")

DATASET = "orders"
DEFAULT_MAX_QUARANTINE_RATE = 0.10
DEFAULT_LANDING_PREFIX = "landing/"
# Parquet written by the jobs: zstd at a low level compresses text well and costs little CPU.
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 1, "statistics": True}

WRITE_THREADS = 2


class LoadRefusedError(RuntimeError):
    """`load` was asked to publish a run whose validation did not pass (or did not run)."""


class StageInputError(RuntimeError):
    """A stage's input from an earlier stage is missing."""


class SourceNameError(ValueError):
    """A source name that cannot be a folder of the zones."""


# --- layout -------------------------------------------------------------------------------------------------------


def _run_part(run_date: date) -> str:
    return f"run_date={run_date.isoformat()}"


def raw_prefix(zones: Zones, run_date: date) -> str:
    return storage.join(zones.raw, _run_part(run_date))


def landing_uri(zones: Zones, source: str, landing_prefix: str = DEFAULT_LANDING_PREFIX) -> str:
    """Where files of `source` land in the raw zone: `<raw>/<landing prefix><source>/`."""
    return storage.join(zones.raw, landing_prefix, source) + "/"


def staged_prefix(zones: Zones, run_date: date) -> str:
    return storage.join(zones.staged, _run_part(run_date))


def staged_part_uri(zones: Zones, run_date: date, source: str) -> str:
    return storage.join(staged_prefix(zones, run_date), f"source={source}", "part.parquet")


def transform_record_uri(zones: Zones, run_date: date, source: str) -> str:
    return storage.join(staged_prefix(zones, run_date), "_stages", "transform", f"source={source}.json")


def stage_record_uri(zones: Zones, run_date: date, stage: str) -> str:
    return storage.join(staged_prefix(zones, run_date), "_stages", f"{stage}.json")


def quarantine_uri(zones: Zones, run_date: date) -> str:
    return storage.join(zones.quarantine, _run_part(run_date), "quarantine.parquet")


def manifest_uri(zones: Zones, run_date: date) -> str:
    return storage.join(zones.quarantine, "_manifests", _run_part(run_date), "manifest.json")


def load_record_uri(zones: Zones, run_date: date) -> str:
    return storage.join(zones.curated, "_loads", f"{_run_part(run_date)}.json")


def curated_file_uri(zones: Zones, order_date: date, run_date: date) -> str:
    return storage.join(zones.curated, f"order_date={order_date.isoformat()}", f"part-{run_date.isoformat()}.parquet")


# --- helpers ------------------------------------------------------------------------------------------------------


def _write_json(uri: str, payload: dict[str, Any]) -> None:
    storage.write_bytes(uri, json.dumps(payload, indent=2, sort_keys=True, default=str).encode() + b"\n")


def _read_json(uri: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(storage.read_bytes(uri))
    return result


def _write_parquet(uri: str, frame: pl.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, **PARQUET_OPTIONS)
    storage.write_bytes(uri, buffer.getvalue())


def _read_parquet(uri: str) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(storage.read_bytes(uri)))


def _basename(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def _check_source(source: str) -> None:
    if not source or "/" in source or source.startswith(".") or source.startswith("_") or "=" in source:
        raise SourceNameError(f"source name {source!r} must be a plain folder name such as 'orders'")


# --- extract ------------------------------------------------------------------------------------------------------


def extract(source_uri: str, zones: Zones, run_date: date, source: str = DATASET) -> dict[str, Any]:
    """Copy the source object/file unchanged to `raw/run_date=D/<source>/<file name>`.

    The checksum of what was copied is taken by transform, which reads the raw files anyway.
    """
    _check_source(source)
    start = time.perf_counter()
    raw_uri = storage.join(raw_prefix(zones, run_date), source, _basename(source_uri))
    size = storage.copy(source_uri, raw_uri)
    result = {
        "stage": "extract",
        "run_date": run_date.isoformat(),
        "source": source,
        "source_uri": source_uri,
        "raw_uri": raw_uri,
        "bytes": size,
        "duration_s": round(time.perf_counter() - start, 4),
    }
    log.info("extract: copied %s (%d bytes) to %s", source_uri, size, raw_uri)
    return result


def _extract_read(
    source_uri: str, zones: Zones, run_date: date, source: str, writer: ThreadPoolExecutor
) -> tuple[dict[str, Any], bytes, Future[None]]:
    """`extract` for `run`: the source is read once and its bytes serve both the raw copy and the parse.

    The raw copy is written from those bytes (so it is byte-identical to what is parsed and hashed) on `writer`,
    while the transform parses them; the caller waits for the returned future before the run goes on.
    """
    _check_source(source)
    start = time.perf_counter()
    raw_uri = storage.join(raw_prefix(zones, run_date), source, _basename(source_uri))
    data = storage.read_bytes(source_uri)
    written = writer.submit(storage.write_bytes, raw_uri, data)
    result = {
        "stage": "extract",
        "run_date": run_date.isoformat(),
        "source": source,
        "source_uri": source_uri,
        "raw_uri": raw_uri,
        "bytes": len(data),
        "duration_s": round(time.perf_counter() - start, 4),
    }
    log.info("extract: copying %s (%d bytes) to %s", source_uri, len(data), raw_uri)
    return result, data, written


def extract_landed(
    zones: Zones, run_date: date, source: str = DATASET, landing_prefix: str = DEFAULT_LANDING_PREFIX
) -> dict[str, Any]:
    """Extract every file landed for `source` (under `landing_uri`) into `raw/run_date=D/<source>/`.

    What an orchestrator's extract does when it names no input: the CLI without `--input` and the `stage_extract`
    Lambda handler both call this. Raises StageInputError when nothing has landed.
    """
    _check_source(source)
    start = time.perf_counter()
    where = landing_uri(zones, source, landing_prefix)
    uris = storage.list_files(where)
    if not uris:
        raise StageInputError(f"nothing landed for source {source!r} under {where}: nothing to extract")
    results = [extract(uri, zones, run_date, source) for uri in uris]
    return {
        "stage": "extract",
        "run_date": run_date.isoformat(),
        "source": source,
        "landing_uri": where,
        "source_uris": uris,
        "files": [result["raw_uri"] for result in results],
        "bytes": sum(int(result["bytes"]) for result in results),
        "duration_s": round(time.perf_counter() - start, 4),
    }


# --- transform ----------------------------------------------------------------------------------------------------


def _raw_sources(zones: Zones, run_date: date, also: Iterable[str] = ()) -> dict[str, list[str]]:
    """The raw files of the run date by source (the folder under `raw/run_date=D/`), with `also` (raw files being
    written) among them."""
    prefix = raw_prefix(zones, run_date).rstrip("/") + "/"
    by_source: dict[str, list[str]] = {}
    for uri in sorted(set(storage.list_files(prefix)).union(also)):
        relative = uri[len(prefix) :] if storage.is_s3(prefix) else os.path.relpath(uri, prefix).replace(os.sep, "/")
        source, slash, _ = relative.partition("/")
        if not slash:
            raise StageInputError(f"{uri} is not in a source folder: extract writes raw/run_date=D/<source>/<file>")
        by_source.setdefault(source, []).append(uri)
    return by_source


def _transform_source(
    zones: Zones,
    run_date: date,
    source: str,
    uris: list[str],
    *,
    write_staged: bool = True,
    preloaded: dict[str, bytes] | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Transform one source's raw files into its own staged part and stage record (nothing else is written).

    Files in `preloaded` (raw URI to its bytes, taken out as they are parsed) are not read back from the raw zone."""
    start = time.perf_counter()
    part_uri = staged_part_uri(zones, run_date, source)
    record_uri = transform_record_uri(zones, run_date, source)
    pending: list[tuple[str, int, Future[str]]] = []

    def read_each(hasher: ThreadPoolExecutor) -> Iterator[tuple[str, bytes]]:
        for uri in uris:
            data = preloaded.pop(uri) if preloaded and uri in preloaded else storage.read_bytes(uri)
            # hashlib releases the GIL: the checksum is computed while the file is parsed.
            pending.append((uri, len(data), hasher.submit(lambda blob: hashlib.sha256(blob).hexdigest(), data)))
            yield uri, data
            del data  # before the next file is read

    try:
        with ThreadPoolExecutor(max_workers=1) as hasher:
            staged, info = transform_files(read_each(hasher))
            inputs = [{"uri": uri, "bytes": size, "sha256": digest.result()} for uri, size, digest in pending]
    except ContractError:
        # The source's earlier part must not be validated in its place: validate then asks for this source's transform.
        storage.delete(part_uri)
        storage.delete(record_uri)
        raise
    if write_staged:
        _write_parquet(part_uri, staged)
    else:
        storage.delete(part_uri)
    result: dict[str, Any] = {
        "stage": "transform",
        "run_date": run_date.isoformat(),
        "source": source,
        "transform_id": uuid.uuid4().hex,
        "staged_uri": part_uri if write_staged else None,
        "inputs": inputs,
        "input_sha256": _combined_sha256(inputs),
        "rows_in": info["rows_in"],
        "blank_lines": info["blank_lines"],
        "ignored_columns": info["ignored_columns"],
        "duration_s": round(time.perf_counter() - start, 4),
    }
    _write_json(record_uri, result)
    log.info(
        "transform: %s: %d records (%d blank lines) from %d file(s)",
        source,
        info["rows_in"],
        info["blank_lines"],
        len(uris),
    )
    return staged, result


def _combined_sha256(inputs: list[dict[str, Any]]) -> str:
    if len(inputs) == 1:
        return str(inputs[0]["sha256"])
    return hashlib.sha256("".join(str(i["sha256"]) for i in inputs).encode()).hexdigest()


def _summary(records: list[dict[str, Any]], run_date: date) -> dict[str, Any]:
    """One transform result for the whole run date from its per-source records (what validate, load and the
    manifest use). Its `transform_id` changes whenever any source is transformed again."""
    records = sorted(records, key=lambda record: str(record["source"]))
    sources = {str(record["source"]): str(record["transform_id"]) for record in records}
    inputs = sorted((i for record in records for i in record["inputs"]), key=lambda i: str(i["uri"]))
    return {
        "stage": "transform",
        "run_date": run_date.isoformat(),
        "transform_id": hashlib.sha256(json.dumps(sources, sort_keys=True).encode()).hexdigest()[:32],
        "sources": sources,
        "staged_uris": [record["staged_uri"] for record in records],
        "inputs": inputs,
        "input_sha256": _combined_sha256(inputs),
        "rows_in": sum(int(record["rows_in"]) for record in records),
        "blank_lines": sum(int(record["blank_lines"]) for record in records),
        "ignored_columns": sorted({c for record in records for c in record["ignored_columns"]}),
        "duration_s": round(sum(float(record["duration_s"]) for record in records), 4),
    }


def _transform_all(
    zones: Zones, run_date: date, *, write_staged: bool = True, preloaded: dict[str, bytes] | None = None
) -> tuple[list[pl.DataFrame], list[dict[str, Any]]]:
    by_source = _raw_sources(zones, run_date, also=preloaded or ())
    if not by_source:
        raise StageInputError(
            f"no raw files for run date {run_date} under {raw_prefix(zones, run_date)}; run extract first"
        )
    # A new transform invalidates any earlier validation of this run date, even if it fails.
    storage.delete(stage_record_uri(zones, run_date, "validate"))
    # Sources whose raw files are gone are no longer part of the run date.
    for gone in sorted(set(_transform_records(zones, run_date)) - set(by_source)):
        storage.delete(staged_part_uri(zones, run_date, gone))
        storage.delete(transform_record_uri(zones, run_date, gone))
    frames: list[pl.DataFrame] = []
    records: list[dict[str, Any]] = []
    for source, uris in sorted(by_source.items()):
        frame, record = _transform_source(zones, run_date, source, uris, write_staged=write_staged, preloaded=preloaded)
        frames.append(frame)
        records.append(record)
    return frames, records


def transform(zones: Zones, run_date: date, source: str | None = None) -> dict[str, Any]:
    """Parse, clean, normalise and enrich raw files into staged parts, one per source (dedupe is done by validate).

    With `source`, only `raw/run_date=D/<source>/` is transformed, into `staged/run_date=D/source=<source>/`, and that
    source's record is returned: parallel transforms of different sources never write the same object. Without it,
    every source of the date is transformed and a summary of the date is returned. Either way the run date's earlier
    validation no longer counts.

    Raises ContractError when a file's header lacks a required column; that source's part is removed then (validate
    asks for it to be transformed again) and a failed manifest says why.
    """
    try:
        if source is None:
            return _summary(_transform_all(zones, run_date)[1], run_date)
        _check_source(source)
        uris = storage.list_files(storage.join(raw_prefix(zones, run_date), source) + "/")
        if not uris:
            raise StageInputError(
                f"no raw files for source {source!r} of run date {run_date} under "
                f"{storage.join(raw_prefix(zones, run_date), source)}/; run extract first"
            )
        storage.delete(stage_record_uri(zones, run_date, "validate"))
        return _transform_source(zones, run_date, source, uris)[1]
    except ContractError as error:
        _write_json(manifest_uri(zones, run_date), _manifest(zones, run_date, None, None, None, error=str(error)))
        raise


def _transform_records(zones: Zones, run_date: date) -> dict[str, dict[str, Any]]:
    """The per-source transform records of the run date, by source."""
    folder = storage.join(staged_prefix(zones, run_date), "_stages", "transform")
    records: dict[str, dict[str, Any]] = {}
    for uri in storage.list_files(folder + "/"):
        name = _basename(uri)
        if name.startswith("source=") and name.endswith(".json"):
            records[name.removeprefix("source=").removesuffix(".json")] = _read_json(uri)
    return records


def _staged_records(zones: Zones, run_date: date) -> list[dict[str, Any]]:
    """Every source's transform record; StageInputError unless every source with raw files has been transformed."""
    records = _transform_records(zones, run_date)
    if not records:
        raise StageInputError(
            f"stage 'transform' has not run for run date {run_date} "
            f"(no records under {storage.join(staged_prefix(zones, run_date), '_stages', 'transform')})"
        )
    missing = sorted(set(_raw_sources(zones, run_date)) - set(records))
    if missing:
        raise StageInputError(
            f"source(s) {', '.join(missing)} of run date {run_date} have raw files but no staged part: run "
            f"transform for them (`transform --source <name>`, or `transform` for every source) first"
        )
    return [records[source] for source in sorted(records)]


def _read_staged(records: list[dict[str, Any]], run_date: date) -> pl.DataFrame:
    """Every staged part of the run date, deduped across sources."""
    frames = []
    for record in records:
        uri = record.get("staged_uri")
        try:
            if not uri:
                raise storage.InputNotFoundError(f"the transform of source {record['source']!r} kept it in memory")
            frames.append(_read_parquet(uri))
        except storage.InputNotFoundError as error:
            raise StageInputError(
                f"no staged data for source {record['source']!r} of run date {run_date} ({error}): run the transform "
                "stage first (`run` keeps its staged data in memory and does not write it)"
            ) from error
    return _dedupe_parts(frames)


def _dedupe_parts(frames: list[pl.DataFrame]) -> pl.DataFrame:
    staged = frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical_relaxed")
    if staged.schema != pl.Schema(STAGED_SCHEMA):  # e.g. an Enum read back from Parquet as another type
        staged = staged.cast(STAGED_SCHEMA)  # type: ignore[arg-type]
    return dedupe(staged)


# --- validate -----------------------------------------------------------------------------------------------------


def _quarantine_frame(staged: pl.DataFrame, run_date: date, passed: bool) -> pl.DataFrame:
    rejected = staged if not passed else staged.filter(pl.col("_reason").is_not_null())
    reason = pl.col("_reason").cast(pl.String)
    if not passed:
        reason = reason.fill_null(Reason.BATCH_REJECTED.value)
    # A structurally broken row has no trustworthy fields: only its raw text is kept.
    structural = pl.col("_reason").cast(pl.String).is_in([r.value for r in STRUCTURAL_REASONS]).fill_null(False)
    return rejected.select(
        pl.lit(run_date, pl.Date).alias("run_date"),
        pl.col("_file").alias("source_file"),
        pl.col("_line").alias("line"),
        reason.alias("reason"),
        pl.col("_raw").alias("raw_line"),
        *[pl.when(~structural).then(pl.col(c)).alias(c) for c in STAGED_SCHEMA if not c.startswith("_")],
    ).sort("source_file", "line")


def _validate(
    staged: pl.DataFrame, transform_result: dict[str, Any], zones: Zones, run_date: date, max_quarantine_rate: float
) -> dict[str, Any]:
    start = time.perf_counter()
    if not 0.0 <= max_quarantine_rate <= 1.0:
        raise ValueError(f"max_quarantine_rate must be between 0 and 1, got {max_quarantine_rate}")
    rows_in = staged.height
    counts = staged.filter(pl.col("_reason").is_not_null())["_reason"].value_counts()
    row_reasons = {str(r): int(n) for r, n in counts.iter_rows()}
    row_failures = sum(row_reasons.values())
    rows_valid = rows_in - row_failures
    rate = row_failures / rows_in if rows_in else 0.0
    failures: list[str] = []
    if rows_in > 0 and rows_valid == 0:
        failures.append(f"no row of {rows_in} passed the row rules: the curated output would be empty")
    if rate > max_quarantine_rate:
        failures.append(
            f"quarantine rate {rate:.4f} ({row_failures} of {rows_in} rows) is above the maximum {max_quarantine_rate}"
        )
    passed = not failures
    quarantine = _quarantine_frame(staged, run_date, passed)
    _write_parquet(quarantine_uri(zones, run_date), quarantine)
    reasons = dict(row_reasons)
    if not passed and rows_valid:
        reasons[Reason.BATCH_REJECTED.value] = rows_valid
    result: dict[str, Any] = {
        "stage": "validate",
        "run_date": run_date.isoformat(),
        "transform_id": transform_result["transform_id"],
        "sources": sorted(transform_result["sources"]),
        "passed": passed,
        "failures": failures,
        "quarantine_rate": round(rate, 6),
        "max_quarantine_rate": max_quarantine_rate,
        "rows_in": rows_in,
        "rows_valid": rows_valid if passed else 0,
        "rows_quarantined": quarantine.height,
        "reasons": dict(sorted(reasons.items())),
        "quarantine_uri": quarantine_uri(zones, run_date),
        "duration_s": round(time.perf_counter() - start, 4),
    }
    _write_json(stage_record_uri(zones, run_date, "validate"), result)
    if passed:
        log.info("validate: passed; %d of %d rows quarantined (rate %.4f)", row_failures, rows_in, rate)
    else:
        log.warning("validate: FAILED: %s", "; ".join(failures))
        _write_json(manifest_uri(zones, run_date), _manifest(zones, run_date, transform_result, result, None))
    return result


def validate(zones: Zones, run_date: date, max_quarantine_rate: float = DEFAULT_MAX_QUARANTINE_RATE) -> dict[str, Any]:
    """Dedupe across every staged part of the run date, quarantine rows that break a row rule and check the batch
    rules; `passed` says whether load may publish. Always covers every source of the date.

    `quarantine_rate` is the share of rows breaking a row rule (superseded duplicates included). When a batch rule
    fails, the rows that passed the row rules are quarantined too (reason `batch_rejected`, normalised), so nothing is
    lost and nothing reaches curated. Raises StageInputError unless every source with raw files has a staged part.
    """
    records = _staged_records(zones, run_date)
    staged = _read_staged(records, run_date)
    return _validate(staged, _summary(records, run_date), zones, run_date, max_quarantine_rate)


def _stage_record(zones: Zones, run_date: date, stage: str) -> dict[str, Any]:
    uri = stage_record_uri(zones, run_date, stage)
    try:
        return _read_json(uri)
    except storage.InputNotFoundError as error:
        raise StageInputError(f"stage {stage!r} has not run for run date {run_date} ({uri} is missing)") from error


# --- load ---------------------------------------------------------------------------------------------------------


def _load(staged: pl.DataFrame, zones: Zones, run_date: date) -> dict[str, Any]:
    start = time.perf_counter()
    # Each writer cuts its own partition from the staged frame in one lazy filter + projection, so only the curated
    # columns of its rows are gathered, once (an eager filter would gather the raw text and bookkeeping columns too,
    # and cutting the valid rows first would copy every curated row twice).
    valid = pl.col("_reason").is_null()
    counts = staged.lazy().filter(valid).group_by("order_date").len().collect()
    rows_curated = int(counts["len"].sum())

    def write_partition(order_date: date) -> str:
        part = (
            staged.lazy()
            .filter(valid & (pl.col("order_date") == order_date))
            .select(c for c in CURATED_COLUMNS if c != "order_date")
            .collect()
        )
        uri = curated_file_uri(zones, order_date, run_date)
        _write_parquet(uri, part)
        return uri

    # Polars encodes and S3 uploads outside the GIL: writing partitions concurrently uses both cores and the network.
    with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
        written = sorted(pool.map(write_partition, counts["order_date"].to_list()))
    # Replace the run's partitions: files an earlier attempt wrote that this one did not rewrite are removed.
    record_uri = load_record_uri(zones, run_date)
    previous: list[str] = _read_json(record_uri)["files"] if storage.exists(record_uri) else []
    stale = sorted(set(previous) - set(written))
    for uri in stale:
        storage.delete(uri)
    _write_json(record_uri, {"run_date": run_date.isoformat(), "files": written})
    log.info("load: %d rows into %d partition(s) of %s", rows_curated, len(written), zones.curated)
    return {
        "stage": "load",
        "run_date": run_date.isoformat(),
        "rows_curated": rows_curated,
        "partitions": [_basename(uri.rsplit("/", 1)[0]) for uri in written],
        "curated_files": written,
        "removed_files": stale,
        "duration_s": round(time.perf_counter() - start, 4),
    }


def _check_validated(zones: Zones, run_date: date) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    try:
        validation = _stage_record(zones, run_date, "validate")
    except StageInputError as error:
        if not _transform_records(zones, run_date) and not _raw_sources(zones, run_date):
            raise StageInputError(
                f"nothing to load for run date {run_date}: run extract and transform first"
            ) from error
        raise LoadRefusedError(f"refusing to load run date {run_date}: it has not been validated") from error
    records = _staged_records(zones, run_date)
    transform_result = _summary(records, run_date)
    if validation.get("transform_id") != transform_result["transform_id"]:
        raise LoadRefusedError(f"refusing to load run date {run_date}: it was transformed again since validation")
    if not validation.get("passed"):
        raise LoadRefusedError(
            f"refusing to load run date {run_date}: validation failed ({'; '.join(validation.get('failures', []))})"
        )
    return records, transform_result, validation


def load(zones: Zones, run_date: date) -> dict[str, Any]:
    """Publish the validated rows as curated Parquet partitioned by `order_date`, replacing this run's files.

    Reads every staged part of the run date (whatever `--source` a command line names) and applies the same dedupe
    as validate. Raises LoadRefusedError unless the run date's latest transforms passed validation.
    """
    records, transform_result, validation = _check_validated(zones, run_date)
    result = _load(_read_staged(records, run_date), zones, run_date)
    _write_json(manifest_uri(zones, run_date), _manifest(zones, run_date, transform_result, validation, result))
    return result


# --- manifest and run ---------------------------------------------------------------------------------------------


def _manifest(
    zones: Zones,
    run_date: date,
    transform_result: dict[str, Any] | None,
    validation: dict[str, Any] | None,
    load_result: dict[str, Any] | None,
    *,
    extract_result: dict[str, Any] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    rows_in = int(transform_result["rows_in"]) if transform_result else 0
    rows_curated = int(load_result["rows_curated"]) if load_result else 0
    rows_quarantined = int(validation["rows_quarantined"]) if validation else 0
    errors = list(validation.get("failures", [])) if validation else []
    if error:
        errors.append(error)
    succeeded = load_result is not None and not errors
    durations = {
        name: part["duration_s"]
        for name, part in (
            ("extract", extract_result),
            ("transform", transform_result),
            ("validate", validation),
            ("load", load_result),
        )
        if part
    }
    return {
        "dataset": DATASET,
        "run_date": run_date.isoformat(),
        "status": "succeeded" if succeeded else "failed",
        "errors": errors,
        "input": {
            "sha256": transform_result["input_sha256"] if transform_result else None,
            "files": transform_result["inputs"] if transform_result else [],
            "source_uri": extract_result["source_uri"] if extract_result else None,
        },
        "sources": sorted(transform_result["sources"]) if transform_result else [],
        "rows_in": rows_in,
        "rows_curated": rows_curated,
        "rows_quarantined": rows_quarantined,
        "blank_lines": transform_result["blank_lines"] if transform_result else 0,
        "quarantine_reasons": validation["reasons"] if validation else {},
        "quarantine_rate": validation["quarantine_rate"] if validation else None,
        "max_quarantine_rate": validation["max_quarantine_rate"] if validation else None,
        "ignored_columns": transform_result["ignored_columns"] if transform_result else [],
        "durations_s": durations,
        "zones": {"raw": zones.raw, "staged": zones.staged, "curated": zones.curated, "quarantine": zones.quarantine},
        "outputs": {
            "quarantine": validation["quarantine_uri"] if validation else None,
            "partitions": load_result["partitions"] if load_result else [],
            "curated_files": load_result["curated_files"] if load_result else [],
        },
    }


def run(
    source_uri: str, zones: Zones, run_date: date, max_quarantine_rate: float = DEFAULT_MAX_QUARANTINE_RATE
) -> dict[str, Any]:
    """All four stages in one process; returns the manifest.

    Every source of the run date is transformed (the one just extracted and any extracted earlier) and deduped
    together. The staged data stays in memory between the stages (only the small stage records are written to the
    staged zone), which saves writing and reading it back; run the stages one by one to keep the staged Parquet.

    The manifest (also written to the quarantine zone) has `status` "failed" and the reason in `errors` when a batch
    rule fails or the input breaks the contract; curated is untouched then.
    """
    if not 0.0 <= max_quarantine_rate <= 1.0:
        raise ValueError(f"max_quarantine_rate must be between 0 and 1, got {max_quarantine_rate}")
    # The source is read once: its bytes are written to the raw zone (on `writer`) while the transform parses them.
    try:
        with ThreadPoolExecutor(max_workers=1) as writer:
            extract_result, data, raw_written = _extract_read(source_uri, zones, run_date, DATASET, writer)
            preloaded = {str(extract_result["raw_uri"]): data}
            del data  # the transform drops the bytes once parsed
            try:
                frames, records = _transform_all(zones, run_date, write_staged=False, preloaded=preloaded)
            finally:
                # The raw copy is complete (or its failure raised) before the run goes on; any wait for it counts
                # as extract time.
                waited = time.perf_counter()
                raw_written.result()
                extract_result["duration_s"] = round(
                    float(extract_result["duration_s"]) + time.perf_counter() - waited, 4
                )
    except ContractError as error:
        log.error("transform: %s", error)
        manifest = _manifest(zones, run_date, None, None, None, extract_result=extract_result, error=str(error))
        _write_json(manifest_uri(zones, run_date), manifest)
        return manifest
    transform_result = _summary(records, run_date)
    # Deduped once: validate and load get the same in-memory frame (run separately, each dedupes what it reads).
    staged = _dedupe_parts(frames)
    del frames
    validation = _validate(staged, transform_result, zones, run_date, max_quarantine_rate)
    load_result = _load(staged, zones, run_date) if validation["passed"] else None
    manifest = _manifest(zones, run_date, transform_result, validation, load_result, extract_result=extract_result)
    _write_json(manifest_uri(zones, run_date), manifest)
    return manifest
