"""Claims: each landed file is delivered exactly once, whichever pipeline sees it first.

A source's ledger (`raw/_ledger/<source>.json`) lists its deliveries in claim order: the landing sequence `seq`
(1, 2, ...), the content hash, where the file landed (URI, version tag, size, modification stamp: its identity) and
where its immutable copy is. `claim()` does, for every file it is given:
  1. read it and hash it; write the raw copy `raw/deliveries/<source>/sha256=<hex>/<name>` (create-only: the same
     bytes under the same name are written once, whoever gets there first);
  2. add it to the ledger in one conditional write (`If-Match` on the ledger's version, or create-only for a new
     ledger); when another claimer wrote the ledger in between, read it again and decide again;
  3. remove it from landing, conditioned on the version that was read (a file replaced meanwhile stays for the next
     claim).
A file whose identity is already in the ledger was claimed by an earlier attempt or another pipeline: it is only
removed from landing (a crash between steps 2 and 3 heals that way). A file with the content of an earlier delivery
is a duplicate delivery: it gets its own sequence number, status `duplicate` and `duplicate_of`, and changes nothing
downstream. Same name with new content is a new delivery.

`reprocess()` raises the generation of the deliveries claimed on the dates given, so transform stages them again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from etl_jobs import layout, storage
from etl_jobs.zones import Zones

log = logging.getLogger("etl_jobs")

CLAIM_ATTEMPTS = 20


class LedgerError(RuntimeError):
    """A ledger could not be read or updated (corrupt content, or too much contention)."""


class SourceNameError(ValueError):
    """A source name that cannot be a folder of the zones."""


def check_source(source: str) -> str:
    if not source or "/" in source or source.startswith((".", "_")) or "=" in source or source != source.strip():
        raise SourceNameError(f"source name {source!r} must be a plain folder name such as 'orders'")
    return source


@dataclass(frozen=True)
class Landed:
    """A file to claim: where it is and what it is (bytes, their hash and the version that was read)."""

    uri: str
    data: bytes
    sha256: str
    info: storage.ObjectInfo
    remove: bool  # remove from landing once claimed (False for `--input` files outside landing)

    @property
    def name(self) -> str:
        return self.uri.rstrip("/").rsplit("/", 1)[-1]

    def identity(self) -> list[Any]:
        return [self.uri, self.info.etag, self.info.size, self.info.modified]


def read_landed(uri: str, *, remove: bool) -> Landed:
    data, info = storage.read_with_info(uri)
    return Landed(uri, data, hashlib.sha256(data).hexdigest(), info, remove)


def read_ledger(zones: Zones, source: str) -> tuple[list[dict[str, Any]], str | None]:
    """The source's deliveries and the ledger's version tag (None when it does not exist yet)."""
    uri = layout.ledger_uri(zones, source)
    try:
        data, info = storage.read_with_info(uri)
    except storage.NotFoundError:
        return [], None
    try:
        entries: list[dict[str, Any]] = json.loads(data)["deliveries"]
    except (ValueError, KeyError, TypeError) as error:
        raise LedgerError(
            f"the ledger {uri} is not a ledger document ({error}); restore it from its versions"
        ) from error
    return entries, info.etag


def sources(zones: Zones) -> list[str]:
    """Every source with a ledger."""
    folder = layout.ledger_folder(zones)
    names = [layout.relative(folder, uri) for uri in storage.list_files(folder)]
    return sorted(name.removesuffix(".json") for name in names if name.endswith(".json") and "/" not in name)


def _write_ledger(zones: Zones, source: str, entries: list[dict[str, Any]], etag: str | None) -> None:
    body = json.dumps({"source": source, "deliveries": entries}, indent=1, sort_keys=True).encode() + b"\n"
    uri = layout.ledger_uri(zones, source)
    if etag is None:
        storage.write(uri, body, if_none_match=True)
    else:
        storage.write(uri, body, if_match=etag)


def write_ledger(zones: Zones, source: str, entries: list[dict[str, Any]], etag: str | None) -> None:
    """Replace the source's ledger with `entries`, conditioned on the version `etag` that was read (None: create-only).
    Raises `storage.PreconditionFailedError` when another writer was first: read it again and decide again."""
    _write_ledger(zones, source, entries, etag)


def _decide(
    entries: list[dict[str, Any]], files: Sequence[Landed], source: str, run_date: date
) -> list[dict[str, Any]]:
    """What claiming `files` adds to `entries`: one entry per file not claimed yet (new or duplicate)."""
    by_identity = {json.dumps(entry["landed_identity"]): entry for entry in entries}
    by_hash: dict[str, dict[str, Any]] = {}
    for known in entries:
        if known["status"] == "delivered":
            by_hash.setdefault(known["sha256"], known)
    added: list[dict[str, Any]] = []
    for landed in files:
        if json.dumps(landed.identity()) in by_identity:
            continue
        seq = len(entries) + len(added) + 1
        original = by_hash.get(landed.sha256)
        entry: dict[str, Any] = {
            "seq": seq,
            "source": source,
            "status": "duplicate" if original else "delivered",
            "duplicate_of": original["seq"] if original else None,
            "name": landed.name,
            "sha256": landed.sha256,
            "bytes": len(landed.data),
            "landed_uri": landed.uri,
            "landed_identity": landed.identity(),
            "raw_uri": "",
            "run_date": run_date.isoformat(),
            "claimed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "gen": 1,
        }
        added.append(entry)
        by_identity[json.dumps(landed.identity())] = entry
        if original is None:
            by_hash[landed.sha256] = entry
    return added


def claim(zones: Zones, source: str, files: Sequence[Landed], run_date: date) -> list[dict[str, Any]]:
    """Claim `files` for `source`: raw copies, one ledger update, removal from landing. Returns the new entries."""
    check_source(source)
    raw_uris = {}
    for landed in files:
        raw_uri = layout.raw_copy_uri(zones, source, landed.sha256, landed.name)
        with contextlib.suppress(storage.PreconditionFailedError):  # the same bytes and name: there already
            storage.write(raw_uri, landed.data, if_none_match=True)
        raw_uris[landed.sha256, landed.name] = raw_uri
    for attempt in range(CLAIM_ATTEMPTS):
        entries, etag = read_ledger(zones, source)
        added = _decide(entries, files, source, run_date)
        for entry in added:
            entry["raw_uri"] = raw_uris[entry["sha256"], entry["name"]]
        if not added:
            break
        try:
            _write_ledger(zones, source, entries + added, etag)
            break
        except storage.PreconditionFailedError:
            log.info("ledger of %s changed while claiming (attempt %d); reading it again", source, attempt + 1)
            time.sleep(0.05 * (attempt + 1))
    else:
        raise LedgerError(f"could not update the ledger of {source!r} after {CLAIM_ATTEMPTS} attempts (contention)")
    for landed in files:
        if landed.remove:
            try:
                storage.delete(landed.uri, if_match=landed.info.etag)
            except storage.PreconditionFailedError:
                log.warning("%s changed or went away after it was claimed; it is left for the next claim", landed.uri)
    return added


def landed_files(zones: Zones, source: str, landing_prefix: str) -> list[storage.ObjectInfo]:
    return storage.list_infos(layout.landing_uri(zones, source, landing_prefix))


def reprocess(zones: Zones, start: date, end: date, only: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Raise the generation of every delivery claimed from `start` to `end` (ledger run dates, inclusive), so the
    stages that follow stage, validate and load them again. Returns the entries changed."""
    changed: list[dict[str, Any]] = []
    for source in list(only) or sources(zones):
        for attempt in range(CLAIM_ATTEMPTS):
            entries, etag = read_ledger(zones, source)
            picked = [
                e
                for e in entries
                if e["status"] == "delivered" and start.isoformat() <= e["run_date"] <= end.isoformat()
            ]
            if not picked:
                break
            for entry in picked:
                entry["gen"] = int(entry["gen"]) + 1
                entry.setdefault("reprocessed_at", []).append(datetime.now(UTC).isoformat(timespec="seconds"))
            try:
                _write_ledger(zones, source, entries, etag)
                changed.extend(picked)
                break
            except storage.PreconditionFailedError:
                time.sleep(0.05 * (attempt + 1))
        else:
            raise LedgerError(f"could not update the ledger of {source!r} after {CLAIM_ATTEMPTS} attempts")
    return changed
