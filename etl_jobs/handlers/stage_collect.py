"""The extract stage of a stream's compaction pipeline (streaming): collect the staged micro-batches of the event's
source(s) into deliveries (`streams.collect`); the batch stages transform, validate and load them next.

A manual start may carry `{"reprocess": {"from": D, "to": D}}`, as on the batch extract: those deliveries are marked
for processing again first (see `etl_jobs.access.RUNS_AS`)."""

from __future__ import annotations

from typing import Any

from etl_jobs import pipeline, streams
from etl_jobs.handlers._runtime import zones
from etl_jobs.handlers._stage import per_source, stage_handler
from etl_jobs.handlers.events import StageEvent


def run(event: StageEvent) -> dict[str, Any]:
    lake = zones()
    reprocessed = None
    if event.reprocess:
        reprocessed = pipeline.reprocess(lake, event.reprocess.start, event.reprocess.end, event.run_date, event.source)
    result = per_source(event, lambda source: streams.collect(lake, event.run_date, source or streams.DEFAULT_SOURCE))
    if reprocessed is not None:
        result["reprocess"] = reprocessed
    return result


handler = stage_handler("extract", run)
