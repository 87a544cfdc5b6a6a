"""What the Lambda handler tests share: the zone buckets, a Lambda context, and the events AWS sends."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

BUCKETS = {
    "raw": "acme-raw-1234",
    "staged": "acme-staged-1234",
    "curated": "acme-curated-1234",
    "quarantine": "acme-quarantine-1234",
}
RUN_DATE = "2024-05-04"


@dataclasses.dataclass(frozen=True)
class Lake:
    """The handler tests' lake (the `lake` fixture): S3 and SQS clients and the work queue."""

    s3: Any
    sqs: Any
    queue_url: str


@dataclasses.dataclass(frozen=True)
class LambdaContext:
    """What Powertools' inject_lambda_context reads from the real context object."""

    function_name: str = "etl-serverless-test"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:etl-serverless-test"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"


def scheduler_event(source: str = "orders", scheduled_time: str = f"{RUN_DATE}T02:00:00Z") -> dict[str, Any]:
    """The input the serverless schedule sends (the scheduler substitutes <aws.scheduler.scheduled-time>)."""
    return {"source": source, "scheduled_time": scheduled_time}


def object_created_event(key: str, bucket: str = BUCKETS["raw"], time: str = f"{RUN_DATE}T09:30:12Z") -> dict[str, Any]:
    """An S3 "Object Created" event as EventBridge delivers it to a rule target."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": time,
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184", "sequencer": "00617F08"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }


def sqs_record(message_id: str, body: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"receipt-{message_id}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1714813200000",
            "SenderId": "AROAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1714813200001",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:etl-work",
        "awsRegion": "us-east-1",
    }
