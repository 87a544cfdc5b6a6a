"""The storage-access declaration (`etl_jobs.access`) is complete and tight.

Complete: every command of a multi-day scenario (new files, a bad file, a duplicate, an update that moves a partition,
a retraction killed mid-commit and finished by the next load, a reprocess, a retraction that empties a partition)
runs as `python -m etl_jobs` on a moto server enforcing IAM, under a role whose policy is exactly
`grants(command)` rendered by `tests.support.iam.policy_document`, and succeeds; every list prefix it sends is inside
a declared LIST grant. Tight: over the scenario, every (grant, op) of every command was needed by some call.
What moto does not evaluate is listed in tests/support/iam.py (conditions, KMS, resource policies).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from etl_jobs.access import COMMANDS, RUNS_AS, STREAM_COMMANDS, Grant, Op, Zone, grants
from tests.support.iam import (
    EnforcingMoto,
    enforcing_moto,
    list_prefixes,
    policy_document,
    run_under_policy,
    unused_grants,
)
from tests.support.orders import csv_bytes, row

ROOTS = {
    Zone.RAW: "s3://acme-raw/lake/",
    Zone.STAGED: "s3://acme-staged/lake/",
    Zone.CURATED: "s3://acme-curated/",
    Zone.QUARANTINE: "s3://acme-quarantine/q/",
    Zone.RESULTS: "s3://acme-results/runs/",
}
ENV = {f"ETL_{zone.value.upper()}_URI": uri for zone, uri in ROOTS.items() if zone != Zone.RESULTS}


@pytest.fixture(scope="module")
def iam_moto() -> Iterator[EnforcingMoto]:
    with enforcing_moto() as server:
        yield server


class Lake:
    def __init__(self, server: EnforcingMoto, tmp: Path) -> None:
        self.server = server
        self.s3 = server.admin("s3")
        self.tmp = tmp
        self.calls: dict[str, list[dict[str, Any]]] = {}
        for bucket in {uri.removeprefix("s3://").split("/")[0] for uri in ROOTS.values()}:
            self.s3.create_bucket(Bucket=bucket)
        self.count = 0

    def land(self, source: str, name: str, data: bytes) -> None:
        self.s3.put_object(Bucket="acme-raw", Key=f"lake/landing/{source}/{name}", Body=data)

    def run(self, command: str, *args: str, crash_after: str | None = None, expect: int = 0) -> dict[str, Any]:
        self.count += 1
        log = self.tmp / f"calls-{self.count}.jsonl"
        result = f"s3://acme-results/runs/{command}-{self.count}.json"
        env = {**ENV, "ETL_TEST_CALL_LOG": str(log)}
        if crash_after:
            env["ETL_TEST_CRASH_AFTER_WRITE"] = crash_after
        declared = grants(command)
        done = run_under_policy(
            self.server,
            [policy_document(declared, ROOTS)],
            [command, "--run-date", "2024-05-04", "--result-uri", result, *args],
            env,
            list_prefixes=list_prefixes(declared, ROOTS),
        )
        assert done.returncode == expect, (
            f"{command} {args} exited {done.returncode} under exactly its declared grants\n{done.stderr[-3000:]}"
        )
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        self.calls.setdefault(command, []).extend(calls)
        if expect != 0:
            return {}
        body = self.s3.get_object(Bucket="acme-results", Key=result.removeprefix("s3://acme-results/"))["Body"]
        out: dict[str, Any] = json.loads(body.read())
        return out

    def curated_keys(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket="acme-curated", Prefix="order_date=").get("Contents", [])
        return sorted(item["Key"] for item in listing)


def test_every_command_runs_under_exactly_its_declared_grants(iam_moto: EnforcingMoto, tmp_path: Path) -> None:
    iam_moto.reset()
    lake = Lake(iam_moto, tmp_path)
    first = csv_bytes(
        row("O1", order_ts="2024-05-01T09:00:00Z"),  # superseded by the next line
        row("O1", order_ts="2024-05-01T10:00:00Z"),
        row("O2", status="lost"),
    )
    lake.land("orders", "a.csv", first)
    lake.land("orders", "bad.csv", b"order_id;amount\nO9;1\n")
    lake.land("shop", "s.csv", csv_bytes(row("S1", order_ts="2024-04-01T10:00:00Z")))
    assert lake.run("extract", "--source", "orders")["already_claimed"] == 0
    lake.run("extract", "--source", "shop")
    lake.run("transform")
    assert lake.run("validate", "--max-quarantine-rate", "0.5")["passed"] is True
    loaded = lake.run("load")
    assert (loaded["rows_curated"], loaded["quarantine_reasons"]) == (
        2,
        {"file_rejected": 1, "invalid_status": 1, "superseded": 1},
    )
    assert loaded["files_quarantined"][0]["name"] == "bad.csv"

    # An update that moves O1 to a later date, and an old version of S1 (from another source), which loses.
    later = csv_bytes(
        row("O1", order_ts="2024-05-03T10:00:00Z", amount="9.00"), row("S1", order_ts="2024-03-01T10:00:00Z")
    )
    lake.land("orders", "b.csv", later)
    lake.land("orders", "a-again.csv", first)
    assert lake.run("extract", "--source", "orders")["duplicates"] == ["a-again.csv"]
    lake.run("transform", "--source", "orders")
    lake.run("validate", "--source", "orders", "--max-quarantine-rate", "0.5")
    # Killed right after its commit record: the next command to commit (a retraction here) publishes it first.
    lake.run("load", "--source", "orders", crash_after="_commits/", expect=137)
    retracted = lake.run("retract", "--file", "shop/seq=1")
    # S1's earlier version (from b.csv, on 2024-03-01) is restored; shop's partition is left empty and removed.
    assert retracted["moves"] == ["2024-04-01->2024-03-01"] and retracted["partitions"] == ["2024-03-01", "2024-04-01"]
    keys = lake.curated_keys()
    assert "order_date=2024-04-01/part-00000.parquet" not in keys
    assert {"order_date=2024-03-01/part-00000.parquet", "order_date=2024-05-03/part-00000.parquet"} <= set(keys)

    # A retraction killed right after its commit record: the next load publishes it.
    lake.run("retract", "--file", "landing/orders/b.csv", crash_after="_commits/", expect=137)
    assert lake.run("load")["commit"] is None
    assert "order_date=2024-05-01/part-00000.parquet" in lake.curated_keys()

    assert [d["seq"] for d in lake.run("reprocess", "--from", "2024-05-04", "--to", "2024-05-04")["deliveries"]]
    lake.run("transform")
    lake.run("validate", "--max-quarantine-rate", "0.5")
    assert lake.run("load")["rows_curated"] == 1

    unused = {
        command: [(g.zone.value, g.prefix, op.value) for g, op in unused_grants(grants(command), ROOTS, calls)]
        for command, calls in lake.calls.items()
    }
    assert unused == {command: [] for command in lake.calls}, "declared grants no call needed"
    # `process` runs in tests/handlers/test_access.py, the stream's commands in tests/handlers/test_stream_access.py.
    assert set(lake.calls) == set(COMMANDS) - {"process", *STREAM_COMMANDS}


def test_a_missing_grant_is_a_permission_error_naming_the_action_and_key(
    iam_moto: EnforcingMoto, tmp_path: Path
) -> None:
    iam_moto.reset()
    lake = Lake(iam_moto, tmp_path)
    lake.land("orders", "a.csv", csv_bytes(row("O1")))
    declared = [g for g in grants("extract") if not (g.zone == Zone.RAW and g.prefix == "deliveries/")]
    done = run_under_policy(
        iam_moto,
        [policy_document(declared, ROOTS)],
        ["extract", "--run-date", "2024-05-04"],
        ENV,
        list_prefixes=list_prefixes(declared, ROOTS),
    )
    assert done.returncode == 5, done.stderr
    assert "permission denied: s3:PutObject on s3://acme-raw/lake/deliveries/orders/sha256=" in done.stderr
    assert "Traceback" not in done.stderr
    # Nothing was claimed: the file is still in landing.
    assert lake.s3.list_objects_v2(Bucket="acme-raw", Prefix="lake/landing/orders/")["KeyCount"] == 1


def test_a_list_outside_the_declared_prefixes_fails(iam_moto: EnforcingMoto, tmp_path: Path) -> None:
    iam_moto.reset()
    Lake(iam_moto, tmp_path)
    declared = grants("transform")
    narrowed = [(bucket, prefix + "nothing-here/") for bucket, prefix in list_prefixes(declared, ROOTS)]
    done = run_under_policy(iam_moto, [policy_document(declared, ROOTS)], ["transform"], ENV, list_prefixes=narrowed)
    assert done.returncode != 0 and "is outside every declared LIST grant" in done.stderr


def test_the_declaration_is_stable_and_least_privilege() -> None:
    assert COMMANDS == (
        "extract", "transform", "validate", "load", "retract", "reprocess", "process", "consume", "collect", "compact"
    )  # fmt: skip
    assert dict(RUNS_AS) == {"retract": "load", "reprocess": "extract"}
    for command in COMMANDS:
        for grant in grants(command):
            assert isinstance(grant, Grant) and grant.why and grant.ops
            assert not grant.prefix.startswith("/")
    landing = [g for g in grants("extract") if g.prefix == "landing/"]
    assert set().union(*(g.ops for g in landing)) == {Op.LIST, Op.READ, Op.DELETE}  # never WRITE in landing
    assert [g.prefix for g in grants("extract", landing_prefix="inbox")][:2] == ["inbox/", "inbox/"]
    deleting = {(g.zone, g.prefix) for g in grants("load") if Op.DELETE in g.ops}
    assert deleting == {(Zone.CURATED, "_index/"), (Zone.CURATED, "_staging/"), (Zone.CURATED, "order_date=")}
    for command in COMMANDS:
        deletes = [(g.zone, g.prefix) for g in grants(command) if Op.DELETE in g.ops]
        # Only collected stream micro-batches leave staged; nothing leaves quarantine.
        assert [d for d in deletes if d[0] in {Zone.STAGED, Zone.QUARANTINE}] in ([], [(Zone.STAGED, "streams/")])
    with pytest.raises(ValueError, match="unknown command 'publish'; commands: extract, transform"):
        grants("publish")
