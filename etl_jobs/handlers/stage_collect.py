"""The extract stage of a stream's compaction pipeline (streaming): collect the staged micro-batches of the event's
source(s) into deliveries (`streams.collect`); the batch stages transform, validate and load them next."""

from __future__ import annotations

from typing import Any

from etl_jobs import streams
from etl_jobs.handlers._runtime import zones
from etl_jobs.handlers._stage import per_source, stage_handler
from etl_jobs.handlers.events import StageEvent


def run(event: StageEvent) -> dict[str, Any]:
    lake = zones()
    return per_source(event, lambda source: streams.collect(lake, event.run_date, source or streams.DEFAULT_SOURCE))


handler = stage_handler("extract", run)
