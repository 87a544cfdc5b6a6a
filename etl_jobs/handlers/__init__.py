"""AWS Lambda handlers over `etl_jobs.pipeline`: thin adapters from Lambda events to the stage functions.

- `extract.handler`: an EventBridge Scheduler event (sweep `landing/<source>/`) or an S3 "Object Created" event from
  EventBridge (one file under the landing prefix) -> `pipeline.extract` -> one SQS message per run (or file).
- `process.handler`: an SQS batch -> transform, validate, load per message; a failing message is reported as a batch
  item failure (ReportBatchItemFailures), the others succeed.
- `stage_extract`, `stage_transform`, `stage_validate`, `stage_load`: invoked by the Step Functions orchestrator with
  `{"run_date": ..., "source": ..., "input": ...}`; each returns its stage dict. extract without `input` takes every
  file landed for the source; transform with `source` transforms only that source (one Map iteration per source);
  validate and load always cover every source of the run date.

Configuration comes from the environment: the zones (`ETL_*_URI`), `ETL_WORK_QUEUE_URL`, `ETL_LANDING_PREFIX`,
`ETL_MAX_QUARANTINE_RATE` and Powertools' `POWERTOOLS_*`. No pulumi import here.
"""
