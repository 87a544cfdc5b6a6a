"""Extract Lambda: a schedule or a file drop -> copy into the run's raw partition -> one SQS message per run/file.

Events:
- EventBridge Scheduler (input set by the serverless architecture):
  `{"source": "orders", "scheduled_time": "2024-01-31T02:00:00Z"}` -> every file under `landing/<source>/` is
  extracted for that date and ONE message is sent for the run. The schedule guarantees a run per period even when a
  file event was lost; re-running a date replaces its partition, so the overlap with file drops is harmless.
- S3 "Object Created" via EventBridge (`source` "aws.s3"): the one file under the landing prefix is extracted for the
  date of the event and ONE message is sent for it. Its source is the folder after the prefix (`landing/orders/x.csv`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import date
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from etl_jobs import pipeline, storage
from etl_jobs.handlers._runtime import (
    DEFAULT_SOURCE,
    BadEventError,
    landing_prefix,
    landing_uri,
    logger,
    metrics,
    run_date_of,
    sqs_client,
    tracer,
    zones,
)

SendMessage = Callable[[dict[str, Any]], None]


def _send_to_work_queue(message: dict[str, Any]) -> None:
    sqs_client().send_message(QueueUrl=os.environ["ETL_WORK_QUEUE_URL"], MessageBody=json.dumps(message))


def requests_of(event: dict[str, Any]) -> list[tuple[str, date, list[str]]]:
    """(source, run date, source URIs) of each run the event asks for."""
    if event.get("source") == "aws.s3" and event.get("detail-type") == "Object Created":
        bucket, key = event["detail"]["bucket"]["name"], event["detail"]["object"]["key"]
        prefix = landing_prefix()
        if not key.startswith(prefix) or key.endswith("/"):
            raise BadEventError(f"s3://{bucket}/{key} is not a file under the landing prefix {prefix!r}")
        folders = key[len(prefix) :].split("/")
        source = folders[0] if len(folders) > 1 else DEFAULT_SOURCE
        return [(source, run_date_of(event.get("time"), default_now=True), [f"s3://{bucket}/{key}"])]
    source = str(event.get("source") or DEFAULT_SOURCE)
    run_date = run_date_of(event.get("run_date") or event.get("scheduled_time"), default_now=True)
    files = storage.list_files(landing_uri(source))
    return [(source, run_date, files)]


def handle(event: dict[str, Any], send: SendMessage = _send_to_work_queue) -> list[dict[str, Any]]:
    """Extract what the event names and queue one message per run; returns the messages sent."""
    sent = []
    for source, run_date, uris in requests_of(event):
        if not uris:
            logger.warning("nothing to extract", extra={"source": source, "run_date": run_date.isoformat()})
            metrics.add_metric(name="EmptyExtracts", unit=MetricUnit.Count, value=1)
            continue
        results = [pipeline.extract(uri, zones(), run_date, source=source) for uri in uris]
        message = {
            "run_date": run_date.isoformat(),
            "source": source,
            "raw_uris": [result["raw_uri"] for result in results],
            "bytes": sum(int(result["bytes"]) for result in results),
        }
        send(message)
        sent.append(message)
        metrics.add_metric(name="FilesExtracted", unit=MetricUnit.Count, value=len(results))
        logger.info("queued run", extra=message)
    return sent


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return {"messages": handle(event)}
