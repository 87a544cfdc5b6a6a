"""Transform stage for Step Functions: every raw file of the run date into staged Parquet."""

from __future__ import annotations

from typing import Any

from etl_jobs import pipeline
from etl_jobs.handlers._runtime import run_date_of, zones
from etl_jobs.handlers._stage import stage_handler


def run(event: dict[str, Any]) -> dict[str, Any]:
    return pipeline.transform(zones(), run_date_of(event.get("run_date")))


handler = stage_handler("transform", run)
