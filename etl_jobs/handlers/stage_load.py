"""Load stage for Step Functions: commit every validated delivery to curated.

A manual start may carry `{"retract": {"file": KEY}}`: that delivery is retracted first (it needs load's role: it
rewrites curated; see `etl_jobs.access.RUNS_AS`)."""

from __future__ import annotations

from typing import Any

from etl_jobs import pipeline
from etl_jobs.handlers._runtime import engine, zones
from etl_jobs.handlers._stage import per_source, stage_handler
from etl_jobs.handlers.events import StageEvent


def run(event: StageEvent) -> dict[str, Any]:
    lake, chosen = zones(), engine()
    retracted = pipeline.retract(lake, event.retract.file, event.run_date, engine=chosen) if event.retract else None
    result = per_source(event, lambda source: pipeline.load(lake, event.run_date, source, engine=chosen))
    if retracted is not None:
        result["retract"] = retracted
    return result


handler = stage_handler("load", run)
