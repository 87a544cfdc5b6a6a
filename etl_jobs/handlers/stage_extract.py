"""Extract stage for Step Functions: claim what landed for the event's source(s), or the `input` URI given.

A manual start may carry `{"reprocess": {"from": D, "to": D}}`: those deliveries are marked for processing again
first (extract's role owns the ledger; see `etl_jobs.access.RUNS_AS`)."""

from __future__ import annotations

from typing import Any

from etl_jobs import pipeline
from etl_jobs.handlers._runtime import landing_prefix, zones
from etl_jobs.handlers._stage import per_source, stage_handler
from etl_jobs.handlers.events import DEFAULT_SOURCE, StageEvent


def run(event: StageEvent) -> dict[str, Any]:
    lake = zones()
    reprocessed = None
    if event.reprocess:
        reprocessed = pipeline.reprocess(lake, event.reprocess.start, event.reprocess.end, event.run_date, event.source)
    inputs = [event.input] if event.input else []
    result = per_source(
        event,
        lambda source: pipeline.extract(
            lake, event.run_date, source or DEFAULT_SOURCE, inputs=inputs, landing_prefix=landing_prefix()
        ),
    )
    if reprocessed is not None:
        result["reprocess"] = reprocessed
    return result


handler = stage_handler("extract", run)
