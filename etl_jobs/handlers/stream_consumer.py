"""Stream consumer (streaming): one Kinesis batch (one shard's records) -> a staged micro-batch (`streams.consume`).

Failures, as the event source mapping handles them (ReportBatchItemFailures and BisectBatchOnFunctionError on):
- a record that breaks the contract is quarantined with its reason: the batch succeeds (retrying changes nothing);
- the lake failed (S3 unreachable, throttled, access denied): nothing of the batch was staged (the marker is written
  last), so the batch's first record is reported: Lambda retries from it, bisecting the batch at that record,
  until its retries or the record age are spent, then sends the batch's shard and range to the on-failure
  destination and moves on;
- anything else is a function error (a bug, or a record the engine cannot survive): Lambda bisects the batch and
  retries each half, which isolates a poison record in a batch of its own before it is given up.
Metrics: `RecordsConsumed`, `RowsQuarantined`, `BatchesFailed`.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from etl_jobs import storage, streams
from etl_jobs.handlers._runtime import engine, logger, metrics, tracer, zones
from etl_jobs.handlers.events import stream_batch


def stream_source() -> str:
    """ETL_STREAM_SOURCE: the source the stream's deliveries belong to (default `orders-stream`)."""
    return os.environ.get("ETL_STREAM_SOURCE") or streams.DEFAULT_SOURCE


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, str]]]:
    batch = stream_batch(event)
    first = batch.ordered()[0].sequence
    logger.append_keys(shard=batch.shard, first_sequence=first, records=len(batch.records))
    try:
        result = streams.consume(zones(), batch, stream_source(), engine=engine())
    except storage.StorageError as error:
        metrics.add_metric(name="BatchesFailed", unit=MetricUnit.Count, value=1)
        logger.error("micro-batch not staged; reporting its first record for a retry", extra={"error": str(error)})
        return {"batchItemFailures": [{"itemIdentifier": first}]}
    metrics.add_metric(name="RecordsConsumed", unit=MetricUnit.Count, value=result["records"])
    metrics.add_metric(name="RowsQuarantined", unit=MetricUnit.Count, value=result["rows_quarantined"])
    logger.info("micro-batch staged", extra={k: result[k] for k in ("last", "rows_in", "rows_valid", "reasons")})
    return {"batchItemFailures": []}
