"""Validate stage for Step Functions: returns `passed` and `quarantine_rate` for the state machine's gate."""

from __future__ import annotations

from typing import Any

from etl_jobs import pipeline
from etl_jobs.handlers._runtime import max_quarantine_rate, run_date_of, zones
from etl_jobs.handlers._stage import stage_handler


def run(event: dict[str, Any]) -> dict[str, Any]:
    return pipeline.validate(zones(), run_date_of(event.get("run_date")), max_quarantine_rate(event))


handler = stage_handler("validate", run)
