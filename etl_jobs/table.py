"""The curated table's commit protocol: every engine's merges are published through it.

State lives beside the data, under `_`-prefixed paths readers skip (see `etl_jobs.layout`): the commit log
`_commits/C.json` (C = 1, 2, ...), a `C.done` marker per published commit, `_applied/` and `_retracted/` markers, and
one index object per partition. One commit:
  1. roll forward: a commit without its `.done` marker (its writer died mid-publication) is published first, by
     whoever comes next; then the latest commit C is complete and nothing writes partitions until C+1 exists;
  2. merge: the engine reads what it needs (index, partitions, history) and returns the new content of each partition
     it changes; the bytes go to `_staging/<commit id>/` and the versions read are noted (base tags);
  3. decide: create `_commits/<C+1>.json` create-only (S3 `If-None-Match: *`). Two runs racing for C+1: one wins;
     the other deletes its staging and starts again at 1 on the new state (nothing of it was visible);
  4. publish, in the order below, each partition with one conditional write onto the version it was merged from
     (`If-Match`, or create-only for a new partition; a partition left empty is a conditional delete); then the
     index objects, the superseded rows, the `_applied`/`_retracted` markers, the manifest, and `.done` last. Every
     step is idempotent: a run killed anywhere leaves the commit to step 1 of the next run, which ends in the same
     table. A write refused because a helper already published that object is checked (same bytes) and skipped.
Each partition is ONE object (`order_date=D/part-00000.parquet`), replaced by one PUT, so a reader sees a partition's
old rows or its new rows, never a mix and never uncommitted rows. Across partitions the PUTs are separate: an order
that moves from date A to date B (a later version with a later order_ts; or back, on a retraction) is written to B
before it is removed from A, so between those two writes a reader may see that order twice (old version in A, new
in B) and never misses it. Publication follows the moves' order; only a cycle of moves within one commit (possible
only when a reprocess changes timestamps both ways) cannot be ordered, and then an order of the cycle may also be
missing between two writes. Every commit's objects carry its id in their Parquet metadata, so two commits never
write identical bytes and a stale conditional write can never match.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from etl_jobs import layout, storage
from etl_jobs.engines import Engine, MergeResult
from etl_jobs.zones import Zones

log = logging.getLogger("etl_jobs")

COMMIT_ATTEMPTS = 20


class TableError(RuntimeError):
    """The table's state is not what the protocol allows (an object changed outside it, or a record is corrupt)."""


@dataclass
class Pending:
    """A delivery (generation) ready to be committed, with its accounting so far."""

    source: str
    seq: int
    gen: int
    outcome: str  # accepted | rejected | quarantined | empty | duplicate
    name: str
    raw_uri: str
    valid_uri: str | None
    rows_in: int
    reasons: dict[str, int]  # quarantined rows by reason before the merge
    detail: str = ""
    file_reason: str | None = None
    memo: bytes | None = field(default=None, repr=False)

    @property
    def key(self) -> tuple[str, int]:
        return (self.source, self.seq)


# --- reading the state --------------------------------------------------------------------------------------------


def _commit_numbers(zones: Zones) -> tuple[list[int], set[int]]:
    folder = layout.commits_folder(zones)
    numbers: list[int] = []
    done: set[int] = set()
    for uri in storage.list_files(folder):
        name = layout.relative(folder, uri)
        stem, _, suffix = name.partition(".")
        if not stem.isdigit():
            continue
        if suffix == "json":
            numbers.append(int(stem))
        elif suffix == "done":
            done.add(int(stem))
    return sorted(numbers), done


def applied(zones: Zones) -> dict[tuple[str, int], int]:
    """The generation curated reflects for each applied delivery."""
    folder = layout.applied_folder(zones)
    out: dict[tuple[str, int], int] = {}
    for uri in storage.list_files(folder):
        parts = layout.relative(folder, uri).split("/")
        if len(parts) != 3 or not parts[1].startswith("seq=") or not parts[2].startswith("gen="):
            continue
        key = (parts[0], int(parts[1].removeprefix("seq=")))
        out[key] = max(out.get(key, 0), int(parts[2].removeprefix("gen=").removesuffix(".json")))
    return out


def retracted(zones: Zones) -> set[tuple[str, int]]:
    folder = layout.retracted_folder(zones)
    out = set()
    for uri in storage.list_files(folder):
        parts = layout.relative(folder, uri).split("/")
        if len(parts) == 2 and parts[1].startswith("seq="):
            out.add((parts[0], int(parts[1].removeprefix("seq=").removesuffix(".json"))))
    return out


class _View:
    """The engine's window on the table; notes the version of every partition and index object read."""

    def __init__(self, zones: Zones, history_keys: Sequence[tuple[str, int, int]]) -> None:
        self.zones = zones
        self.history_keys = history_keys
        self.data_tags: dict[date, str | None] = {}
        self.index_tags: dict[date, str | None] = {}

    def index(self) -> Mapping[date, bytes]:
        folder = layout.index_folder(self.zones)
        out: dict[date, bytes] = {}
        for info in storage.list_infos(folder):
            name = layout.relative(folder, info.uri)
            if not (name.startswith(layout.PARTITIONS) and name.endswith(".parquet")):
                continue
            day = date.fromisoformat(name.removeprefix(layout.PARTITIONS).removesuffix(".parquet"))
            data, read = storage.read_with_info(info.uri)
            out[day] = data
            self.index_tags[day] = read.etag
        return out

    def partition(self, day: date) -> bytes | None:
        try:
            data, info = storage.read_with_info(layout.partition_uri(self.zones, day))
        except storage.NotFoundError:
            self.data_tags[day] = None
            return None
        self.data_tags[day] = info.etag
        return data

    def history(self) -> Iterator[bytes]:
        for source, seq, gen in self.history_keys:
            marker = json.loads(storage.read_bytes(layout.applied_uri(self.zones, source, seq, gen)))
            if marker.get("outcome") == "accepted":
                yield storage.read_bytes(layout.staged_uri(self.zones, source, seq, gen, "valid.parquet"))


# --- publishing ---------------------------------------------------------------------------------------------------


class _Finished(Exception):
    """Another run published the rest of this commit (its `.done` marker exists)."""


def _publish_object(zones: Zones, number: int, final: str, staged: str | None, base: str | None) -> None:
    done = layout.commit_uri(zones, number, "done")
    if staged is not None:
        try:
            if base is None:
                storage.place(staged, final, if_none_match=True)
            else:
                storage.place(staged, final, if_match=base)
        except storage.NotFoundError:
            if storage.exists(done):
                raise _Finished from None
            raise TableError(f"commit {number}: its staged object {staged} is missing") from None
        except storage.PreconditionFailedError:
            try:
                current = storage.read_bytes(final)
                data = storage.read_bytes(staged)
            except storage.NotFoundError:
                current, data = None, b""
            if current == data:
                return  # published already (by an earlier attempt or a helper)
            if storage.exists(done):
                raise _Finished from None
            raise TableError(
                f"commit {number}: {final} changed outside the commit protocol; it must only be written by load"
            ) from None
        return
    if base is None:
        return  # absent before, absent now
    try:
        storage.delete(final, if_match=base)
    except storage.PreconditionFailedError:
        if not storage.exists(final):
            return
        if storage.exists(done):
            raise _Finished from None
        raise TableError(f"commit {number}: {final} changed outside the commit protocol") from None


def publish(zones: Zones, record: dict[str, Any]) -> None:
    """Make commit `record` visible (idempotent; any run may finish another's commit)."""
    number = int(record["commit"])
    try:
        for part in record["partitions"]:
            day = date.fromisoformat(part["day"])
            _publish_object(zones, number, layout.partition_uri(zones, day), part["data"], part["base"])
        for part in record["partitions"]:
            day = date.fromisoformat(part["day"])
            _publish_object(zones, number, layout.index_uri(zones, day), part["index"], part["index_base"])
    except _Finished:
        return
    for output in record["outputs"]:
        try:
            storage.write(output["to"], storage.read_bytes(output["from"]))
        except storage.NotFoundError:
            if storage.exists(layout.commit_uri(zones, number, "done")):
                return
            raise
    for item in record["deliveries"]:
        marker = {"commit": number, "outcome": item["outcome"], "rows_curated": item["rows_curated"]}
        storage.write(
            layout.applied_uri(zones, item["source"], item["seq"], item["gen"]), json.dumps(marker).encode() + b"\n"
        )
    for source, seq in record["retracted"]:
        storage.write(layout.retracted_uri(zones, source, seq), json.dumps({"commit": number}).encode() + b"\n")
    storage.write(record["manifest_uri"], json.dumps(manifest(record), indent=2, sort_keys=True).encode() + b"\n")
    storage.write(layout.commit_uri(zones, number, "done"), b"")
    for uri in storage.list_files(layout.staging_uri(zones, record["id"]) + "/"):
        storage.delete(uri)


def roll_forward(zones: Zones) -> int:
    """Publish any commit left unpublished and remove staging no commit will publish; returns the latest commit
    number (0 for a new table)."""
    numbers, done = _commit_numbers(zones)
    records: dict[int, dict[str, Any]] = {}
    for number in numbers:
        if number not in done:
            log.warning("commit %d was not fully published (its writer stopped); publishing it now", number)
            records[number] = json.loads(storage.read_bytes(layout.commit_uri(zones, number)))
            publish(zones, records[number])
    latest = numbers[-1] if numbers else 0
    _remove_orphans(zones, latest, records)
    return latest


def _remove_orphans(zones: Zones, latest: int, records: dict[int, dict[str, Any]]) -> None:
    """Delete staging left by attempts that lost the race for their commit number or died before deciding.

    Staging of number `latest + 1` may belong to a run deciding right now: it is left alone."""
    folder = storage.join(zones.curated, layout.STAGING) + "/"
    for uri in storage.list_files(folder):
        commit_id = layout.relative(folder, uri).split("/", 1)[0]
        number = commit_id.split("-", 1)[0]
        if not number.isdigit() or int(number) > latest:
            continue
        if int(number) not in records:
            try:
                records[int(number)] = json.loads(storage.read_bytes(layout.commit_uri(zones, int(number))))
            except storage.NotFoundError:
                records[int(number)] = {}
        if records[int(number)].get("id") != commit_id or storage.exists(layout.commit_uri(zones, int(number), "done")):
            storage.delete(uri)


# --- committing ---------------------------------------------------------------------------------------------------


def _publish_order(days: Iterable[date], moves: Iterable[tuple[date, date]]) -> tuple[list[date], bool]:
    """Days in an order that writes each moved order's new partition before its old one; True when a cycle forced
    part of the order."""
    days = sorted(set(days), reverse=True)
    before: dict[date, set[date]] = {day: set() for day in days}  # day -> days that must be written before it
    for old, new in moves:
        if old in before and new in before and old != new:
            before[old].add(new)
    order: list[date] = []
    placed: set[date] = set()
    while len(order) < len(days):
        ready = [day for day in days if day not in placed and before[day] <= placed]
        if not ready:
            rest = [day for day in days if day not in placed]
            order.extend(rest)
            return order, True
        order.append(ready[0])
        placed.add(ready[0])
    return order, False


def _accounting(item: Pending, merge: MergeResult | None) -> dict[str, Any]:
    reasons = dict(item.reasons)
    curated = 0
    if item.outcome == "accepted" and merge is not None:
        curated = merge.won.get(item.key, 0)
        lost = merge.superseded_counts.get(item.key, 0)
        if lost:
            reasons["superseded"] = reasons.get("superseded", 0) + lost
    quarantined = sum(reasons.values())
    if curated + quarantined != item.rows_in:
        raise TableError(
            f"accounting of {item.source} seq {item.seq} does not add up: {item.rows_in} rows in, {curated} curated, "
            f"{quarantined} quarantined"
        )
    return {
        "source": item.source,
        "seq": item.seq,
        "gen": item.gen,
        "name": item.name,
        "raw_uri": item.raw_uri,
        "outcome": item.outcome,
        "file_reason": item.file_reason,
        "detail": item.detail,
        "rows_in": item.rows_in,
        "rows_curated": curated,
        "rows_quarantined": quarantined,
        "reasons": dict(sorted(reasons.items())),
    }


def manifest(record: dict[str, Any]) -> dict[str, Any]:
    """The commit's manifest: per-file and total counts (rows_in = rows_curated + rows_quarantined for each)."""
    files = record["deliveries"]
    reasons: dict[str, int] = {}
    for item in files:
        for reason, count in item["reasons"].items():
            reasons[reason] = reasons.get(reason, 0) + count
    return {
        "dataset": "orders",
        "commit": record["commit"],
        "kind": record["kind"],
        "run_date": record["run_date"],
        "engine": record["engine"],
        "created_at": record["created_at"],
        "status": "succeeded",
        "rows_in": sum(item["rows_in"] for item in files),
        "rows_curated": sum(item["rows_curated"] for item in files),
        "rows_quarantined": sum(item["rows_quarantined"] for item in files),
        "quarantine_reasons": dict(sorted(reasons.items())),
        "files": files,
        "files_quarantined": [
            {
                "source": i["source"],
                "seq": i["seq"],
                "name": i["name"],
                "reason": i["file_reason"],
                "detail": i["detail"],
            }
            for i in files
            if i["outcome"] in {"quarantined", "rejected"}
        ],
        "duplicates": [
            {"source": i["source"], "seq": i["seq"], "name": i["name"]} for i in files if i["outcome"] == "duplicate"
        ],
        "retracted": [{"source": s, "seq": n} for s, n in record["retracted"]],
        "partitions": [p["day"] for p in record["partitions"]],
        "moves": record["moves"],
        "manifest_uri": record["manifest_uri"],
    }


def commit(
    zones: Zones,
    engine: Engine,
    run_date: date,
    *,
    apply: Sequence[Pending] = (),
    retract: Sequence[tuple[str, int]] = (),
    kind: str = "load",
) -> dict[str, Any] | None:
    """Apply deliveries and retractions to curated in one commit; returns the commit record (None: nothing to do)."""
    for attempt in range(COMMIT_ATTEMPTS):
        latest = roll_forward(zones)
        done_gen = applied(zones)
        gone = retracted(zones)
        todo = [p for p in apply if done_gen.get(p.key, 0) < p.gen and p.key not in gone]
        retract_now = sorted({key for key in retract if key not in gone})
        drop = {p.key for p in todo if p.key in done_gen} | {key for key in retract_now if key in done_gen}
        if not todo and not retract_now:
            return None
        commit_id = f"{latest + 1:012d}-{uuid.uuid4().hex[:12]}"
        incoming = [
            p.memo if p.memo is not None else storage.read_bytes(p.valid_uri)
            for p in todo
            if p.outcome == "accepted" and p.valid_uri
        ]
        history = [(s, n, g) for (s, n), g in sorted(done_gen.items()) if (s, n) not in drop and (s, n) not in gone]
        view = _View(zones, history)
        merge = engine.merge(incoming, view, drop, commit_id) if (incoming or drop) else None
        partitions = []
        staged_uris: list[str] = []
        order, cycle = _publish_order([w.day for w in merge.partitions], merge.moves) if merge else ([], False)
        writes = {w.day: w for w in merge.partitions} if merge else {}
        for day in order:
            write = writes[day]
            entry: dict[str, Any] = {"day": day.isoformat(), "rows": write.rows, "data": None, "index": None}
            if write.data is not None and write.index is not None:
                entry["data"] = layout.staging_uri(zones, commit_id, f"{layout.PARTITIONS}{day}", "data.parquet")
                entry["index"] = layout.staging_uri(zones, commit_id, f"{layout.PARTITIONS}{day}", "index.parquet")
                storage.write(entry["data"], write.data)
                storage.write(entry["index"], write.index)
                staged_uris += [entry["data"], entry["index"]]
            if day not in view.data_tags:
                info = storage.head(layout.partition_uri(zones, day))
                view.data_tags[day] = info.etag if info else None
            if day not in view.index_tags:
                info = storage.head(layout.index_uri(zones, day))
                view.index_tags[day] = info.etag if info else None
            entry["base"] = view.data_tags[day]
            entry["index_base"] = view.index_tags[day]
            partitions.append(entry)
        outputs = []
        for item in todo:
            if merge and item.key in merge.superseded:
                staged = layout.staging_uri(
                    zones, commit_id, "superseded", item.source, f"{item.seq}-{item.gen}.parquet"
                )
                storage.write(staged, merge.superseded[item.key])
                staged_uris.append(staged)
                final = layout.quarantined_rows_uri(zones, item.source, item.seq, item.gen, "superseded.parquet")
                outputs.append({"from": staged, "to": final})
        number = latest + 1
        record = {
            "commit": number,
            "id": commit_id,
            "kind": kind,
            "run_date": run_date.isoformat(),
            "engine": engine.name,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "deliveries": [_accounting(item, merge) for item in todo],
            "retracted": [list(key) for key in retract_now],
            "partitions": partitions,
            "moves": sorted({f"{a.isoformat()}->{b.isoformat()}" for a, b in merge.moves}) if merge else [],
            "publish_order_has_cycle": cycle,
            "outputs": outputs,
            "manifest_uri": layout.manifest_uri(zones, run_date, number),
        }
        try:
            storage.write(
                layout.commit_uri(zones, number),
                json.dumps(record, indent=1, sort_keys=True).encode() + b"\n",
                if_none_match=True,
            )
        except storage.PreconditionFailedError:
            log.info("another run committed %d first (attempt %d); merging again on the new state", number, attempt + 1)
            for uri in staged_uris:
                storage.delete(uri)
            time.sleep(0.05 * (attempt + 1))
            continue
        publish(zones, record)
        return record
    raise TableError(f"could not commit after {COMMIT_ATTEMPTS} attempts: other runs kept committing first")
