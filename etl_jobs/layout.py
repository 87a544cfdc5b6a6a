"""Where everything lives inside the zones: the one source of the key prefixes the stages read, list, write and delete.

Every path the job code builds comes from the functions below, and `etl_jobs.access` declares each command's grants
from the same constants, so the declaration cannot drift from the code. Prefixes are relative to a zone's root (a
bucket root such as `s3://acme-raw-1234/`, or `PREFIX/raw/` with `--output PREFIX`). S = source, N = landing sequence
(zero-padded), G = generation (1, then +1 per reprocess), D = a date.

raw         <landing prefix>S/<file>                         dropped by producers; extract claims and removes them
            deliveries/S/sha256=<hex>/<file>                 the immutable copy of every delivered file
            _ledger/S.json                                   the source's claims: landing sequence, content hash, ...
            archive/S/arrival_date=D/...                     a stream's raw records as Firehose delivers them
            archive-errors/S/<error type>/arrival_date=D/... what Firehose could not deliver
staged      deliveries/S/seq=N/gen=G/valid.parquet           the delivery's valid rows, normalised, with lineage
            deliveries/S/seq=N/gen=G/rejected.parquet        its rows that broke a row rule (quarantine columns)
            deliveries/S/seq=N/gen=G/transform.json          what transform found (written last: the marker)
            deliveries/S/seq=N/gen=G/verdict.json            validate's verdict (created once: the first one wins)
quarantine  deliveries/S/seq=N/gen=G/rows.parquet            rejected rows (and `batch_rejected` ones)
            deliveries/S/seq=N/gen=G/superseded.parquet      valid rows that lost to another version at load
            files/S/seq=N/gen=G/<file>, .../reason.json      a file quarantined whole, and why
            _manifests/run_date=D/commit=C.json              the manifest of each load commit (counts add up)
staged      streams/S/shard=H/seq=F-L/records.json            a stream micro-batch: its records (shard H, sequence
                                                             numbers F to L) with their contract counts (written last)
            streams/S/shard=H/seq=F-L/valid.parquet           the micro-batch's valid rows (until it is collected)
quarantine  streams/S/shard=H/seq=F-L/rows.parquet            the micro-batch's rejected rows, with reasons
curated     order_date=D/part-00000.parquet                  the published rows of date D: one object per partition
            _index/order_date=D.parquet                      order ids and lineage of that partition
            _staging/<commit id>/...                         a commit's objects before they are published
            _commits/C.json, _commits/C.done                 the commit log (C zero-padded) and publish markers
            _applied/S/seq=N/gen=G.json                      which generation of each delivery curated reflects
            _retracted/S/seq=N.json                          deliveries removed by `retract`
Readers of curated (Athena, Glue, Spark, DuckDB) skip `_`-prefixed paths, so they see only published partitions.
"""

from __future__ import annotations

from datetime import date

from etl_jobs import storage
from etl_jobs.zones import Zones

DEFAULT_LANDING_PREFIX = "landing/"

# raw
RAW_DELIVERIES = "deliveries/"
LEDGER = "_ledger/"
ARCHIVE = "archive/"
ARCHIVE_ERRORS = "archive-errors/"
# staged
STAGED_DELIVERIES = "deliveries/"
# stream micro-batches (staged, and their rejected rows in quarantine)
STREAMS = "streams/"
# quarantine
QUARANTINED_ROWS = "deliveries/"
QUARANTINED_FILES = "files/"
MANIFESTS = "_manifests/"
# curated
PARTITION_KEY = "order_date"
PARTITIONS = f"{PARTITION_KEY}="
PARTITION_FILE = "part-00000.parquet"
INDEX = "_index/"
STAGING = "_staging/"
COMMITS = "_commits/"
APPLIED = "_applied/"
RETRACTED = "_retracted/"


def check_landing_prefix(prefix: str) -> str:
    """A landing prefix as the code uses it: relative, ending with `/`."""
    cleaned = prefix.strip().lstrip("/")
    if not cleaned:
        raise ValueError("the landing prefix is empty; use a folder such as 'landing/'")
    return cleaned if cleaned.endswith("/") else cleaned + "/"


def landing_uri(zones: Zones, source: str, landing_prefix: str = DEFAULT_LANDING_PREFIX) -> str:
    return storage.join(zones.raw, landing_prefix, source) + "/"


def raw_copy_uri(zones: Zones, source: str, sha256: str, name: str) -> str:
    return storage.join(zones.raw, RAW_DELIVERIES, source, f"sha256={sha256}", name)


def ledger_folder(zones: Zones) -> str:
    return storage.join(zones.raw, LEDGER) + "/"


def ledger_uri(zones: Zones, source: str) -> str:
    return storage.join(zones.raw, LEDGER, f"{source}.json")


def _delivery(seq: int, gen: int) -> str:
    return f"seq={seq:010d}/gen={gen}"


def staged_source_folder(zones: Zones, source: str) -> str:
    return storage.join(zones.staged, STAGED_DELIVERIES, source) + "/"


def staged_folder(zones: Zones) -> str:
    return storage.join(zones.staged, STAGED_DELIVERIES) + "/"


def staged_uri(zones: Zones, source: str, seq: int, gen: int, name: str) -> str:
    return storage.join(zones.staged, STAGED_DELIVERIES, source, _delivery(seq, gen), name)


def quarantined_rows_uri(zones: Zones, source: str, seq: int, gen: int, name: str) -> str:
    return storage.join(zones.quarantine, QUARANTINED_ROWS, source, _delivery(seq, gen), name)


def quarantined_file_uri(zones: Zones, source: str, seq: int, gen: int, name: str) -> str:
    return storage.join(zones.quarantine, QUARANTINED_FILES, source, _delivery(seq, gen), name)


def manifest_uri(zones: Zones, run_date: date, commit: int) -> str:
    return storage.join(zones.quarantine, MANIFESTS, f"run_date={run_date.isoformat()}", f"commit={commit:012d}.json")


def partition_uri(zones: Zones, day: date) -> str:
    return storage.join(zones.curated, f"{PARTITIONS}{day.isoformat()}", PARTITION_FILE)


def index_folder(zones: Zones) -> str:
    return storage.join(zones.curated, INDEX) + "/"


def index_uri(zones: Zones, day: date) -> str:
    return storage.join(zones.curated, INDEX, f"{PARTITIONS}{day.isoformat()}.parquet")


def staging_uri(zones: Zones, commit_id: str, *parts: str) -> str:
    return storage.join(zones.curated, STAGING, commit_id, *parts)


def commits_folder(zones: Zones) -> str:
    return storage.join(zones.curated, COMMITS) + "/"


def commit_uri(zones: Zones, number: int, suffix: str = "json") -> str:
    return storage.join(zones.curated, COMMITS, f"{number:012d}.{suffix}")


def applied_folder(zones: Zones) -> str:
    return storage.join(zones.curated, APPLIED) + "/"


def applied_uri(zones: Zones, source: str, seq: int, gen: int) -> str:
    return storage.join(zones.curated, APPLIED, source, f"seq={seq:010d}", f"gen={gen}.json")


def retracted_folder(zones: Zones) -> str:
    return storage.join(zones.curated, RETRACTED) + "/"


def retracted_uri(zones: Zones, source: str, seq: int) -> str:
    return storage.join(zones.curated, RETRACTED, source, f"seq={seq:010d}.json")


def streams_folder(zones: Zones, source: str) -> str:
    return storage.join(zones.staged, STREAMS, source) + "/"


def micro_batch_uri(zones: Zones, source: str, shard: str, first: str, last: str, name: str) -> str:
    """A micro-batch's object: keyed by shard and sequence range, so a re-delivered batch overwrites itself."""
    return storage.join(zones.staged, STREAMS, source, f"shard={shard}", f"seq={first}-{last}", name)


def quarantined_micro_batch_uri(zones: Zones, source: str, shard: str, first: str, last: str) -> str:
    return storage.join(zones.quarantine, STREAMS, source, f"shard={shard}", f"seq={first}-{last}", "rows.parquet")


def relative(root: str, uri: str) -> str:
    """`uri` relative to the zone `root` (`/`-separated)."""
    base = root.rstrip("/") + "/"
    if not uri.startswith(base):
        raise ValueError(f"{uri} is not under {root}")
    return uri[len(base) :]
