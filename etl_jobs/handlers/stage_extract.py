"""Extract stage for Step Functions: copy the source's landed files (or `input`, an s3:// URI) into raw."""

from __future__ import annotations

from typing import Any

from etl_jobs import pipeline, storage
from etl_jobs.handlers._runtime import DEFAULT_SOURCE, BadEventError, landing_uri, run_date_of, zones
from etl_jobs.handlers._stage import stage_handler


def run(event: dict[str, Any]) -> dict[str, Any]:
    run_date = run_date_of(event.get("run_date"))
    source = str(event.get("source") or DEFAULT_SOURCE)
    given = event.get("input")
    uris = [given] if isinstance(given, str) and given else storage.list_files(landing_uri(source))
    if not uris:
        raise BadEventError(f"nothing landed for source {source!r} under {landing_uri(source)}")
    results = [pipeline.extract(uri, zones(), run_date, source=source) for uri in uris]
    return {**results[-1], "files": [result["raw_uri"] for result in results]}


handler = stage_handler("extract", run)
