"""Load stage for Step Functions: publish the validated run as curated Parquet (refuses unvalidated runs)."""

from __future__ import annotations

from typing import Any

from etl_jobs import pipeline
from etl_jobs.handlers._runtime import run_date_of, zones
from etl_jobs.handlers._stage import stage_handler


def run(event: dict[str, Any]) -> dict[str, Any]:
    return pipeline.load(zones(), run_date_of(event.get("run_date")))


handler = stage_handler("load", run)
