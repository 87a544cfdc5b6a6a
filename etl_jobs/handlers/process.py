"""Process Lambda: an SQS batch of runs -> transform, validate, load each; failures reported per message.

A message is `{"run_date": "YYYY-MM-DD", "source": ..., ...}` (sent by the extract Lambda). A message whose run
cannot complete (unparseable body, missing raw files, contract error, failed quality gate) is reported as a batch
item failure: SQS redelivers only that one, and after maxReceiveCount it moves to the DLQ, whose depth alarms. The
run's manifest in the quarantine zone says why.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from etl_jobs import pipeline
from etl_jobs.handlers._runtime import BadEventError, logger, max_quarantine_rate, metrics, run_date_of, tracer, zones

# Report every failed message, even when all fail: the invocation then succeeds and SQS redelivers exactly those
# messages, instead of an error that Lambda's Errors alarm would count once per retry of the whole batch.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class QualityGateFailedError(RuntimeError):
    """Validation did not pass: nothing was published; the message goes to the DLQ after its retries."""


def process_run(message: dict[str, Any]) -> dict[str, Any]:
    """Transform, validate and (when validation passed) load one run date."""
    run_date = run_date_of(message.get("run_date"))
    lake = zones()
    pipeline.transform(lake, run_date)
    validation = pipeline.validate(lake, run_date, max_quarantine_rate(message))
    metrics.add_metric(name="RowsQuarantined", unit=MetricUnit.Count, value=validation["rows_quarantined"])
    if not validation["passed"]:
        metrics.add_metric(name="QualityGateFailures", unit=MetricUnit.Count, value=1)
        raise QualityGateFailedError(f"run {run_date}: {'; '.join(validation['failures'])}")
    loaded = pipeline.load(lake, run_date)
    metrics.add_metric(name="RowsCurated", unit=MetricUnit.Count, value=loaded["rows_curated"])
    return loaded


@tracer.capture_method
def record_handler(record: SQSRecord) -> dict[str, Any]:
    try:
        message = json.loads(record.body)
    except json.JSONDecodeError as error:
        raise BadEventError(f"message {record.message_id} is not JSON") from error
    if not isinstance(message, dict):
        raise BadEventError(f"message {record.message_id} is not a JSON object")
    result = process_run(message)
    logger.info("run loaded", extra={"run_date": message.get("run_date"), "rows": result["rows_curated"]})
    return result


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
