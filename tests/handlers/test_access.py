"""The Lambda handlers under exactly their declared grants (`etl_jobs.access`), in process, on a moto server
enforcing IAM: the serverless extract (plus sqs:SendMessage on its queue, which is not lake access) and process
functions, and the four stage functions of the orchestrator. What moto does not evaluate: tests/support/iam.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from etl_jobs.access import Zone, role_grants
from etl_jobs.handlers import extract, process, stage_extract, stage_load, stage_transform, stage_validate
from tests.support.handlers import BUCKETS, RUN_DATE, LambdaContext, scheduler_event, sqs_record
from tests.support.iam import EnforcingMoto, enforcing_moto, list_prefixes, policy_document, under_policy
from tests.support.orders import csv_bytes, row

ROOTS = {Zone(zone): f"s3://{bucket}/" for zone, bucket in BUCKETS.items()} | {Zone.RESULTS: "s3://acme-results/"}
ENV = {f"ETL_{zone.upper()}_URI": f"s3://{bucket}/" for zone, bucket in BUCKETS.items()}
CONTEXT = LambdaContext()


@pytest.fixture(scope="module")
def iam_moto() -> Iterator[EnforcingMoto]:
    with enforcing_moto() as server:
        yield server


def role(command: str, *extra: dict[str, Any]) -> dict[str, Any]:
    declared = role_grants(command)
    return {
        "policy_documents": [policy_document(declared, ROOTS), *extra],
        "list_prefixes": list_prefixes(declared, ROOTS),
    }


def test_serverless_functions_under_their_declared_grants(iam_moto: EnforcingMoto) -> None:
    iam_moto.reset()
    s3, sqs = iam_moto.admin("s3"), iam_moto.admin("sqs")
    for bucket in BUCKETS.values():
        s3.create_bucket(Bucket=bucket)
    queue = sqs.create_queue(QueueName="etl-work")
    arn = sqs.get_queue_attributes(QueueUrl=queue["QueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_object(Bucket=BUCKETS["raw"], Key="landing/orders/a.csv", Body=csv_bytes(row("O1"), row("O2", status="?")))
    send = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": arn}]}
    env = {**ENV, "ETL_WORK_QUEUE_URL": queue["QueueUrl"], "ETL_MAX_QUARANTINE_RATE": "0.5"}

    from etl_jobs.handlers import _runtime

    _runtime.sqs_client.cache_clear()
    with under_policy(iam_moto, env=env, **role("extract", send)):
        sent = extract.handler(scheduler_event(), CONTEXT)["messages"]
    _runtime.sqs_client.cache_clear()
    assert sent == [{"run_date": RUN_DATE, "source": "orders", "deliveries": 1}]
    with under_policy(iam_moto, env=env, **role("process")):
        response = process.handler({"Records": [sqs_record("m1", json.dumps(sent[0]))]}, CONTEXT)
    assert response["batchItemFailures"] == []
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKETS["curated"], Prefix="order_date=")["Contents"]]
    assert keys == ["order_date=2024-05-01/part-00000.parquet"]


def test_stage_functions_under_their_declared_grants(iam_moto: EnforcingMoto) -> None:
    iam_moto.reset()
    s3 = iam_moto.admin("s3")
    for bucket in BUCKETS.values():
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=BUCKETS["raw"], Key="landing/orders/a.csv", Body=csv_bytes(row("O1"), row("O2")))
    event = {"run_date": RUN_DATE, "source": "orders", "max_quarantine_rate": 0.5}
    results = {}
    for stage, handler in (
        ("extract", stage_extract.handler),
        ("transform", stage_transform.handler),
        ("validate", stage_validate.handler),
        ("load", stage_load.handler),
    ):
        with under_policy(iam_moto, env=ENV, **role(stage)):
            results[stage] = handler(event, CONTEXT)
    assert results["validate"]["passed"] is True and results["load"]["rows_curated"] == 2
    # The corrections ride on the stage whose role they run as (RUNS_AS): retract on load, reprocess on extract.
    with under_policy(iam_moto, env=ENV, **role("load")):
        retracted = stage_load.handler({"run_date": RUN_DATE, "retract": {"file": "orders/seq=1"}}, CONTEXT)
    assert retracted["retract"]["partitions"] == ["2024-05-01"]
    with under_policy(iam_moto, env=ENV, **role("extract")):
        marked = stage_extract.handler({"run_date": RUN_DATE, "reprocess": {"from": RUN_DATE, "to": RUN_DATE}}, CONTEXT)
    assert [d["gen"] for d in marked["reprocess"]["deliveries"]] == [2]
