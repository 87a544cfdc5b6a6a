"""A stream's commands under exactly their declared grants (`etl_jobs.access`) on a moto server enforcing IAM: the
consumer handler over a real Kinesis batch (`consume`), the compaction's extract stage (`collect`) and the batch
stages after it, and `python -m etl_jobs compact` as a process; every declared grant is needed by some call. The
consumer's own Kinesis reads are made by the event source mapping with the function's role, not by the handler:
their statements are checked on the rendered role in tests/unit/test_streaming.py. What moto does not evaluate:
tests/support/iam.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from etl_jobs.access import Zone, grants, role_grants
from etl_jobs.handlers import stage_collect, stage_load, stage_transform, stage_validate, stream_consumer
from tests.support.handlers import BUCKETS, RUN_DATE, LambdaContext
from tests.support.iam import (
    EnforcingMoto,
    enforcing_moto,
    list_prefixes,
    log_calls,
    policy_document,
    run_under_policy,
    under_policy,
    unused_grants,
)
from tests.support.kinesis import kinesis_event
from tests.support.orders import row
from tests.support.streams import STREAM, create_stream

ROOTS = {Zone(zone): f"s3://{bucket}/" for zone, bucket in BUCKETS.items()} | {Zone.RESULTS: "s3://acme-results/"}
ENV = {f"ETL_{zone.upper()}_URI": f"s3://{bucket}/" for zone, bucket in BUCKETS.items()}
CONTEXT = LambdaContext()


@pytest.fixture(scope="module")
def iam_moto() -> Iterator[EnforcingMoto]:
    with enforcing_moto() as server:
        yield server


def role(command: str) -> dict[str, Any]:
    declared = role_grants(command)
    return {"policy_documents": [policy_document(declared, ROOTS)], "list_prefixes": list_prefixes(declared, ROOTS)}


def batches(kinesis: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    found = []
    for shard in kinesis.list_shards(StreamName=STREAM)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )
        records = kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
        if records:
            found.append((shard["ShardId"], records))
    return found


def test_stream_commands_under_their_declared_grants(iam_moto: EnforcingMoto, tmp_path: Path) -> None:
    iam_moto.reset()
    s3, kinesis = iam_moto.admin("s3"), iam_moto.admin("kinesis")
    for bucket in [*BUCKETS.values(), "acme-results"]:
        s3.create_bucket(Bucket=bucket)
    create_stream(kinesis, shards=1)
    lines = [row("O1"), row("O2", status="lost"), row("O1", order_ts="2024-05-02T10:00:00Z")]
    for number, line in enumerate(lines):
        kinesis.put_record(StreamName=STREAM, Data=line.encode() + b"\n", PartitionKey=f"O{number % 2 + 1}")
    arn = kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]["StreamARN"]
    ((shard, records),) = batches(kinesis)
    calls: dict[str, Path] = {}

    def run(command: str, handler: Any, event: dict[str, Any]) -> Any:
        calls[command] = tmp_path / f"{command}.jsonl"
        with under_policy(iam_moto, env=ENV, **role(command)):
            log_calls(str(calls[command]))
            return handler(event, CONTEXT)

    # Two micro-batches over the same records (a retry that started elsewhere): collected once.
    assert run("consume", stream_consumer.handler, kinesis_event(arn, shard, records)) == {"batchItemFailures": []}
    run("consume", stream_consumer.handler, kinesis_event(arn, shard, records[1:]))
    stage = {"run_date": RUN_DATE, "source": "orders-stream", "max_quarantine_rate": 0.5}
    collected = run("collect", stage_collect.handler, stage)
    assert [c["records"] for c in collected["claimed"]] == [3] and collected["micro_batches_removed"] == 2
    run("transform", stage_transform.handler, stage)
    run("validate", stage_validate.handler, stage)
    loaded = run("load", stage_load.handler, stage)
    assert (loaded["rows_curated"], loaded["quarantine_reasons"]) == (1, {"invalid_status": 1, "superseded": 1})

    # The CLI's compact, as a process under exactly its grants: a new micro-batch, collected and committed.
    kinesis.put_record(StreamName=STREAM, Data=row("O3").encode() + b"\n", PartitionKey="O3")
    ((_, records),) = batches(kinesis)
    run("consume", stream_consumer.handler, kinesis_event(arn, shard, records[-1:]))
    compacted = run_under_policy(
        iam_moto,
        [policy_document(grants("compact"), ROOTS)],
        ["compact", "--run-date", RUN_DATE, "--result-uri", "s3://acme-results/compact.json"],
        {**ENV, "ETL_TEST_CALL_LOG": str(tmp_path / "compact.jsonl")},
        list_prefixes=list_prefixes(grants("compact"), ROOTS),
    )
    assert compacted.returncode == 0, compacted.stderr[-2000:]
    assert "commit 2: 1 rows in, 1 curated" in compacted.stderr

    unused = {
        command: [
            (g.zone.value, g.prefix, op.value)
            for g, op in unused_grants(
                grants(command),
                ROOTS,
                [json.loads(line) for line in (tmp_path / f"{command}.jsonl").read_text().splitlines()],
            )
        ]
        for command in ("consume", "collect")
    }
    assert unused == {"consume": [], "collect": [("results", "", "write")]}  # handlers return their result

    # A manual start's reprocess rides on the compaction's extract function, whose role holds collect's and
    # reprocess's grants: both of the day's stream deliveries get a new generation, and collect finds nothing new.
    extract = role_grants("collect", as_stage="extract")
    with under_policy(iam_moto, [policy_document(extract, ROOTS)], ENV, list_prefixes=list_prefixes(extract, ROOTS)):
        redone = stage_collect.handler({**stage, "reprocess": {"from": RUN_DATE, "to": RUN_DATE}}, CONTEXT)
    assert sorted((d["seq"], d["gen"]) for d in redone["reprocess"]["deliveries"]) == [(1, 2), (2, 2)]
    assert redone["claimed"] == []
