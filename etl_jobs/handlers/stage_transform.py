"""Transform stage for Step Functions: the event's `source` into its own staged part, or (no `source`) every source.

The orchestrated pipeline's Map runs one transform per source in parallel; each writes only its own part and record
(`staged/run_date=D/source=S/`), so the iterations never write the same object. Dedupe across sources is validate's.
"""

from __future__ import annotations

from typing import Any

from etl_jobs import pipeline
from etl_jobs.handlers._runtime import BadEventError, run_date_of, zones
from etl_jobs.handlers._stage import stage_handler


def run(event: dict[str, Any]) -> dict[str, Any]:
    run_date = run_date_of(event.get("run_date"))
    source = event.get("source")
    if source is not None and not isinstance(source, str):
        raise BadEventError(f"source must be a string such as 'orders', got {source!r}")
    try:
        return pipeline.transform(zones(), run_date, source or None)
    except pipeline.SourceNameError as error:
        raise BadEventError(str(error)) from error


handler = stage_handler("transform", run)
