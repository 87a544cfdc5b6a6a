"""Transform stage for Step Functions: stage the event's source (one Map iteration per source), or every source.

Each delivery is staged under its own prefix, so parallel iterations never write the same object."""

from __future__ import annotations

from typing import Any

from etl_jobs import pipeline
from etl_jobs.handlers._runtime import engine, zones
from etl_jobs.handlers._stage import per_source, stage_handler
from etl_jobs.handlers.events import StageEvent


def run(event: StageEvent) -> dict[str, Any]:
    lake, chosen = zones(), engine()
    return per_source(event, lambda source: pipeline.transform(lake, event.run_date, source, engine=chosen))


handler = stage_handler("transform", run)
