"""Process Lambda (serverless): an SQS batch of runs -> transform, validate, load each; failures per message.

Powertools' BatchProcessor hands each record over as a typed `SQSRecord`; its body must be `{"run_date", "source"?,
"max_quarantine_rate"?}` as JSON (`events.run_message`): a malformed one fails alone as a batch item failure, with
the field named. A run
that cannot complete (S3 errors, a corrupt state) fails its message: SQS redelivers only that one, and after
maxReceiveCount it moves to the DLQ, whose depth alarms. A file failing the quality gate or the contract does not
fail the message (the other files are loaded, and redelivering would change nothing): it is counted in the
`FilesQuarantined` and `QualityGateFailures` metrics and named in the manifest.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from etl_jobs import pipeline
from etl_jobs.handlers._runtime import engine, logger, max_quarantine_rate, metrics, tracer, zones
from etl_jobs.handlers.events import RunMessage, run_message

# Report every failed message, even when all fail: the invocation then succeeds and SQS redelivers exactly those
# messages, instead of an error that Lambda's Errors alarm would count once per retry of the whole batch.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def process_run(message: RunMessage) -> dict[str, Any]:
    """Transform, validate and load one run (its source, or every source)."""
    lake, chosen = zones(), engine()
    pipeline.transform(lake, message.run_date, message.source, engine=chosen)
    validation = pipeline.validate(
        lake, message.run_date, max_quarantine_rate(message.max_quarantine_rate), message.source, engine=chosen
    )
    loaded = pipeline.load(lake, message.run_date, message.source, engine=chosen)
    metrics.add_metric(name="RowsCurated", unit=MetricUnit.Count, value=loaded["rows_curated"])
    metrics.add_metric(name="RowsQuarantined", unit=MetricUnit.Count, value=loaded["rows_quarantined"])
    metrics.add_metric(name="FilesQuarantined", unit=MetricUnit.Count, value=len(loaded["files_quarantined"]))
    if not validation["passed"]:
        metrics.add_metric(name="QualityGateFailures", unit=MetricUnit.Count, value=1)
        logger.error("quality gate failed", extra={"failures": validation["failures"]})
    return loaded


@tracer.capture_method
def record_handler(record: SQSRecord) -> dict[str, Any]:
    message = run_message(record)
    result = process_run(message)
    logger.info("run loaded", extra={"run_date": message.run_date.isoformat(), "rows": result["rows_curated"]})
    return result


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
