"""AWS Lambda handlers over `etl_jobs.pipeline`: thin adapters from checked events (`events`) to the stage functions.

- `extract.handler`: an EventBridge Scheduler sweep, a manual start (`{"run_date", "sources"}`) or an S3 "Object
  Created" event from EventBridge for a file under the landing prefix -> claim what landed for each source
  -> one SQS message per source that has new deliveries.
- `process.handler`: an SQS batch (Powertools' BatchProcessor, typed SQS records) -> transform, validate, load
  per message; a failing message is reported alone (ReportBatchItemFailures).
- `stage_extract`, `stage_transform`, `stage_validate`, `stage_load`: invoked by the Step Functions orchestrator with
  `{"run_date", "source" | "sources", ...}`; each returns its stage result. The manual-start corrections ride on the
  stage whose role they need (`etl_jobs.access.RUNS_AS`): `{"reprocess": {"from": D, "to": D}}` on stage_extract,
  `{"retract": {"file": KEY}}` on stage_load.
- `stream_consumer.handler` (streaming): a Kinesis batch (one shard's records) -> a staged micro-batch; the batch's
  first record is reported when the lake failed, so the event source mapping retries it (`etl_jobs.streams`).
- `stage_collect.handler` (streaming): the extract stage of a stream's compaction: staged micro-batches -> deliveries.
A bad event raises `BadEventError` naming the field and what is expected; retrying will not help.

Configuration comes from the environment: the zones (`ETL_*_URI`), `ETL_WORK_QUEUE_URL`, `ETL_LANDING_PREFIX`,
`ETL_MAX_QUARANTINE_RATE` (an event's `max_quarantine_rate` wins), `ETL_STREAM_SOURCE` (the stream consumer's source),
`ETL_ENGINE` and Powertools' `POWERTOOLS_*`.
"""
