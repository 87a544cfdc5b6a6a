"""Fixtures of the Lambda handler tests: a lake and a work queue on the session's moto server, emptied per test.

Powertools reads its settings when the handler modules are imported, so they are set here, before any import.
Helpers live in tests/support/handlers.py; nothing here is imported by a test module."""

from __future__ import annotations

import os
from collections.abc import Iterator

import boto3
import pytest

from tests.support.handlers import BUCKETS, Lake
from tests.support.moto_server import MotoServer

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "handler-tests")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "EtlPlatformTests")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")


@pytest.fixture
def lake(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lake]:
    """Empty moto; four zone buckets and a work queue; the handlers' environment pointing at them."""
    from etl_jobs import storage
    from etl_jobs.handlers import _runtime

    moto_server.reset()
    for key, value in moto_server.client_environment().items():
        monkeypatch.setenv(key, value)
    for zone, bucket in BUCKETS.items():
        monkeypatch.setenv(f"ETL_{zone.upper()}_URI", f"s3://{bucket}/")
    monkeypatch.setenv("ETL_LANDING_PREFIX", "landing/")
    monkeypatch.setenv("ETL_MAX_QUARANTINE_RATE", "0.10")
    storage._client.cache_clear()
    _runtime.sqs_client.cache_clear()
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    for bucket in BUCKETS.values():
        s3.create_bucket(Bucket=bucket)
    queue_url = sqs.create_queue(QueueName="etl-work")["QueueUrl"]
    monkeypatch.setenv("ETL_WORK_QUEUE_URL", queue_url)
    yield Lake(s3=s3, sqs=sqs, queue_url=queue_url)
    storage._client.cache_clear()
    _runtime.sqs_client.cache_clear()
