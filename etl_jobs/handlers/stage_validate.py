"""Validate stage for Step Functions: returns `passed` and `quarantine_rate` for the state machine's gate.

The threshold is the event's `max_quarantine_rate` (the orchestrator sends its gate's value), else
ETL_MAX_QUARANTINE_RATE, so the job and the gate judge with the same number."""

from __future__ import annotations

from typing import Any

from etl_jobs import pipeline
from etl_jobs.handlers._runtime import engine, max_quarantine_rate, zones
from etl_jobs.handlers._stage import stage_handler
from etl_jobs.handlers.events import StageEvent


def run(event: StageEvent) -> dict[str, Any]:
    rate = max_quarantine_rate(event.max_quarantine_rate)
    lake, chosen = zones(), engine()
    names = event.names()
    results = [pipeline.validate(lake, event.run_date, rate, name, engine=chosen) for name in names]
    if len(results) == 1:
        return results[0]
    rows_in = sum(r["rows_in"] for r in results)
    quarantined = sum(r["rows_quarantined"] for r in results)
    return {
        "stage": "validate",
        "run_date": event.run_date.isoformat(),
        "passed": all(r["passed"] for r in results),
        "quarantine_rate": round(quarantined / rows_in, 6) if rows_in else 0.0,
        "failures": [f for r in results for f in r["failures"]],
        "results": results,
    }


handler = stage_handler("validate", run)
