"""What each command reads, lists, writes and deletes in the lake: the one declaration every IAM policy comes from.

Shape (stable; the infrastructure generates each stage role's policy from it):
- `Zone`: raw, staged, curated, quarantine, and results (where `--result-uri` objects go; the deployment maps it to
  a bucket and prefix). Each zone is a root (a bucket, or a bucket and prefix) the deployment knows.
- `Op`: read (s3:GetObject, also what HeadObject needs), list (s3:ListBucket, with `s3:prefix` starting with the
  grant's prefix), write (s3:PutObject, conditional writes included), delete (s3:DeleteObject, conditional too).
- `Grant(zone, prefix, ops, why)`: `prefix` is relative to the zone root as S3 sees keys ("" = the whole zone);
  a grant covers every key starting with it. `why` names the code path that needs it.
- `grants(command, landing_prefix=...)`: the grants of one command; `COMMANDS`: every command a deployment runs;
  `RUNS_AS`: the corrections, by the stage whose runner and role run them; `role_grants(stage)`: that union, what
  the role of a stage's runner needs.
Prefixes come from `etl_jobs.layout`, the constants the code builds its paths with, so the declaration cannot drift
from what the code does; tests/jobs/test_access.py runs every command on an IAM-enforcing S3 under a role holding
exactly these grants (and checks every list prefix the code sends).

Least privilege: extract writes nothing under landing; it deletes there, only the versions it has just claimed
(conditional deletes). Load deletes only inside curated's partitions, index and staging. Collect deletes only staged
stream micro-batches, once a delivery in the ledger holds their records. Nothing deletes raw copies, staged
deliveries or quarantine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from etl_jobs import layout


class Zone(StrEnum):
    RAW = "raw"
    STAGED = "staged"
    CURATED = "curated"
    QUARANTINE = "quarantine"
    RESULTS = "results"  # where --result-uri objects go; the deployment maps it to a bucket/prefix


class Op(StrEnum):
    READ = "read"
    LIST = "list"
    WRITE = "write"
    DELETE = "delete"


@dataclass(frozen=True)
class Grant:
    zone: Zone
    prefix: str  # relative to the zone root, as S3 sees keys ("" = the whole zone)
    ops: frozenset[Op]
    why: str


COMMANDS: tuple[str, ...] = (
    "extract",
    "transform",
    "validate",
    "load",
    "retract",
    "reprocess",
    "process",
    "consume",
    "collect",
    "compact",
)
STREAM_COMMANDS: tuple[str, ...] = ("consume", "collect", "compact")
"""A stream's commands (`etl_jobs.streams`): the consumer Lambda, the compaction's extract stage, the CLI's compact."""
RUNS_AS: Mapping[str, str] = MappingProxyType({"retract": "load", "reprocess": "extract"})

R, L, W, D = Op.READ, Op.LIST, Op.WRITE, Op.DELETE


def _g(zone: Zone, prefix: str, ops: set[Op], why: str) -> Grant:
    return Grant(zone, prefix, frozenset(ops), why)


def _result() -> Grant:
    return _g(Zone.RESULTS, "", {W}, "--result-uri: the command's result JSON for runners that return no payload")


def _extract(landing_prefix: str) -> tuple[Grant, ...]:
    return (
        _g(Zone.RAW, landing_prefix, {L, R}, "extract lists and reads the files landed for its source"),
        _g(
            Zone.RAW,
            landing_prefix,
            {D},
            "claims move files out of landing: extract deletes exactly the version it claimed (If-Match); it never "
            "writes there",
        ),
        _g(
            Zone.RAW, layout.RAW_DELIVERIES, {W}, "extract writes the immutable raw copy of each delivery (create-only)"
        ),
        _g(Zone.RAW, layout.LEDGER, {R, W}, "extract reads and conditionally rewrites its source's ledger (the claim)"),
    )


def _transform() -> tuple[Grant, ...]:
    return (
        _g(Zone.RAW, layout.LEDGER, {L, R}, "transform lists the sources' ledgers and reads the deliveries to stage"),
        _g(Zone.RAW, layout.RAW_DELIVERIES, {R}, "transform reads each delivery's raw copy"),
        _g(
            Zone.STAGED,
            layout.STAGED_DELIVERIES,
            {L, W},
            "transform lists what is staged and writes each delivery's valid/rejected rows and transform.json",
        ),
        _g(Zone.QUARANTINE, layout.QUARANTINED_FILES, {W}, "transform quarantines a file that breaks the contract"),
    )


def _validate() -> tuple[Grant, ...]:
    return (
        _g(
            Zone.STAGED,
            layout.STAGED_DELIVERIES,
            {L, R, W},
            "validate lists staged deliveries, reads their records and rows, and creates each verdict.json",
        ),
        _g(Zone.QUARANTINE, layout.QUARANTINED_ROWS, {W}, "validate writes each delivery's quarantined rows"),
    )


def _commit(why: str) -> tuple[Grant, ...]:
    """What committing to curated needs (load, retract: either may roll forward the other's unfinished commit)."""
    return (
        _g(
            Zone.STAGED,
            layout.STAGED_DELIVERIES,
            {R},
            f"{why} reads staged valid rows: of the deliveries it applies, and earlier versions it restores",
        ),
        _g(Zone.CURATED, layout.COMMITS, {L, R, W}, f"{why}: the commit log (create-only) and publish markers"),
        _g(Zone.CURATED, layout.APPLIED, {L, R, W}, f"{why}: which generation of each delivery curated reflects"),
        _g(Zone.CURATED, layout.RETRACTED, {L, W}, f"{why}: retracted deliveries are never applied again"),
        _g(Zone.CURATED, layout.INDEX, {L, R, W, D}, f"{why}: each partition's index, replaced with the partition"),
        _g(Zone.CURATED, layout.STAGING, {L, R, W, D}, f"{why}: a commit's objects before publication, then removed"),
        _g(
            Zone.CURATED,
            layout.PARTITIONS,
            {R, W, D},
            f"{why}: publishes each touched partition (conditional put; conditional delete when it empties)",
        ),
        _g(Zone.QUARANTINE, layout.QUARANTINED_ROWS, {W}, f"{why}: the rows that lost to another version"),
        _g(Zone.QUARANTINE, layout.MANIFESTS, {W}, f"{why}: the commit's manifest"),
    )


def _load() -> tuple[Grant, ...]:
    return (_g(Zone.STAGED, layout.STAGED_DELIVERIES, {L}, "load lists the validated deliveries"), *_commit("load"))


def _retract() -> tuple[Grant, ...]:
    return (
        _g(Zone.RAW, layout.LEDGER, {L, R}, "retract finds the delivery --file names in the ledgers"),
        *_commit("retract"),
    )


def _reprocess() -> tuple[Grant, ...]:
    return (_g(Zone.RAW, layout.LEDGER, {L, R, W}, "reprocess raises the generation of deliveries in its ledgers"),)


def _consume() -> tuple[Grant, ...]:
    return (
        _g(
            Zone.STAGED,
            layout.STREAMS,
            {W},
            "consume writes each micro-batch's valid rows and records.json, keyed by shard and sequence range",
        ),
        _g(Zone.QUARANTINE, layout.STREAMS, {W}, "consume quarantines each micro-batch's rejected rows"),
    )


def _collect() -> tuple[Grant, ...]:
    return (
        _g(
            Zone.STAGED,
            layout.STREAMS,
            {L, R, D},
            "collect lists and reads the staged micro-batches, and removes those its deliveries now hold",
        ),
        _g(Zone.RAW, layout.LEDGER, {R, W}, "collect reads and conditionally rewrites the stream source's ledger"),
        _g(Zone.RAW, layout.RAW_DELIVERIES, {W}, "collect writes the raw copy of each delivery (create-only)"),
    )


def grants(command: str, *, landing_prefix: str = layout.DEFAULT_LANDING_PREFIX) -> tuple[Grant, ...]:
    """Every grant `command` needs, with files landing under `landing_prefix` in the raw zone."""
    prefix = layout.check_landing_prefix(landing_prefix)
    declared: dict[str, tuple[Grant, ...]] = {
        "extract": (*_extract(prefix), _result()),
        "transform": (*_transform(), _result()),
        "validate": (*_validate(), _result()),
        "load": (*_load(), _result()),
        "retract": (*_retract(), _result()),
        "reprocess": (*_reprocess(), _result()),
        # The serverless work-queue Lambda: transform, validate and load in one invocation (returns no result file).
        "process": (*_transform(), *_validate(), *_load()),
        # A stream's consumer Lambda: stages micro-batches (returns no result file).
        "consume": _consume(),
        # The extract stage of a stream's compaction pipeline.
        "collect": (*_collect(), _result()),
        # `python -m etl_jobs compact`: collect, transform, validate and load in one process.
        "compact": (*_collect(), *_transform(), *_validate(), *_load(), _result()),
    }
    if command not in declared:
        raise ValueError(f"unknown command {command!r}; commands: {', '.join(COMMANDS)}")
    return declared[command]


def role_grants(
    stage: str, *, landing_prefix: str = layout.DEFAULT_LANDING_PREFIX, as_stage: str | None = None
) -> tuple[Grant, ...]:
    """What the role running `stage` needs: the stage's grants and those of the corrections it runs (`RUNS_AS`).
    `as_stage` names the pipeline stage a command runs as when they differ (a stream's `collect` is its pipeline's
    extract, so it also runs extract's corrections)."""
    runs_as = as_stage or stage
    commands = [stage, *sorted(c for c, runner in RUNS_AS.items() if runner == runs_as)]
    return tuple(grant for command in commands for grant in grants(command, landing_prefix=landing_prefix))
