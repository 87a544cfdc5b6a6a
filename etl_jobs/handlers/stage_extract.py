"""Extract stage for Step Functions: copy the source's landed files (or `input`, an s3:// URI) into raw.

Without `input` it runs `pipeline.extract_landed`, the same code as `python -m etl_jobs extract` without `--input`.
"""

from __future__ import annotations

from typing import Any

from etl_jobs import pipeline
from etl_jobs.handlers._runtime import DEFAULT_SOURCE, BadEventError, landing_prefix, run_date_of, zones
from etl_jobs.handlers._stage import stage_handler


def run(event: dict[str, Any]) -> dict[str, Any]:
    run_date = run_date_of(event.get("run_date"))
    source = str(event.get("source") or DEFAULT_SOURCE)
    given = event.get("input")
    if isinstance(given, str) and given:
        result = pipeline.extract(given, zones(), run_date, source=source)
        return {**result, "files": [result["raw_uri"]]}
    try:
        return pipeline.extract_landed(zones(), run_date, source, landing_prefix=landing_prefix())
    except pipeline.StageInputError as error:
        raise BadEventError(str(error)) from error


handler = stage_handler("extract", run)
