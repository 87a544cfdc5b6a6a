"""Extract Lambda (serverless): a schedule, a manual start or a file drop -> claim what landed -> queue the runs.

Events (parsed by `etl_jobs.handlers.events`):
- EventBridge Scheduler input `{"source": "orders", "scheduled_time": "2024-01-31T02:00:00Z"}`, or a manual start
  `{"run_date": "2024-01-31", "sources": ["orders"]}`: every file under `<landing prefix><source>/` is claimed;
- S3 "Object Created" via EventBridge: the file's source is the folder after the landing prefix
  (`landing/orders/x.csv` -> `orders`), and that source's landing is claimed (the file among them).
One SQS message `{"run_date", "source"}` per source with new deliveries. Claims are exactly-once, so a schedule and
a file event seeing the same file, or two overlapping sweeps, deliver it once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3EventBridgeNotificationEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from etl_jobs import pipeline
from etl_jobs.handlers._runtime import landing_prefix, logger, metrics, sqs_client, tracer, zones
from etl_jobs.handlers.events import BadEventError, sweep_or_file_event

SendMessage = Callable[[dict[str, Any]], None]


def _send_to_work_queue(message: dict[str, Any]) -> None:
    sqs_client().send_message(QueueUrl=os.environ["ETL_WORK_QUEUE_URL"], MessageBody=json.dumps(message))


def requests_of(event: dict[str, Any]) -> list[tuple[str, date]]:
    """(source, run date) of each sweep the event asks for."""
    parsed = sweep_or_file_event(event)
    if isinstance(parsed, S3EventBridgeNotificationEvent):
        bucket, key = parsed.detail.bucket.name, parsed.detail.object.key
        prefix = landing_prefix()
        folders = key.removeprefix(prefix).split("/")
        if not key.startswith(prefix) or len(folders) != 2 or not folders[1]:
            raise BadEventError(
                f"s3://{bucket}/{key} is not a file under the landing prefix {prefix!r} (<prefix><source>/<file>)"
            )
        return [(folders[0], datetime.fromisoformat(parsed.time.replace("Z", "+00:00")).date())]
    return [(source, parsed.day) for source in parsed.sources]


def handle(event: dict[str, Any], send: SendMessage = _send_to_work_queue) -> list[dict[str, Any]]:
    """Claim what the event names and queue one message per source with new deliveries; returns the messages."""
    sent = []
    for source, run_date in requests_of(event):
        result = pipeline.extract(zones(), run_date, source, landing_prefix=landing_prefix())
        # How long the oldest file left in landing has waited: the landing-age alarm watches it.
        metrics.add_metric(name=pipeline.LANDING_WAIT_METRIC, unit=MetricUnit.Seconds, value=result["oldest_waiting_s"])
        if not result["claimed"]:
            logger.info("nothing new landed", extra={"source": source, "run_date": run_date.isoformat()})
            metrics.add_metric(name="EmptyExtracts", unit=MetricUnit.Count, value=1)
            continue
        message = {"run_date": run_date.isoformat(), "source": source, "deliveries": len(result["claimed"])}
        send(message)
        sent.append(message)
        metrics.add_metric(name="FilesClaimed", unit=MetricUnit.Count, value=len(result["claimed"]))
        metrics.add_metric(name="DuplicateDeliveries", unit=MetricUnit.Count, value=len(result["duplicates"]))
        logger.info("queued run", extra=message)
    return sent


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return {"messages": handle(event)}
