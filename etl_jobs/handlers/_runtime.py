"""What every handler shares: Powertools objects, zones, run dates, landing locations and the SQS client."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

from etl_jobs import pipeline
from etl_jobs.pipeline import DEFAULT_LANDING_PREFIX, DEFAULT_MAX_QUARANTINE_RATE
from etl_jobs.zones import Zones

# Service name and namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE set per function.
logger = Logger()
metrics = Metrics()
tracer = Tracer()

DEFAULT_SOURCE = "orders"


class BadEventError(ValueError):
    """The event is not one this handler understands; retrying will not help."""


def zones() -> Zones:
    return Zones.from_env()


def landing_prefix() -> str:
    return os.environ.get("ETL_LANDING_PREFIX", DEFAULT_LANDING_PREFIX)


def max_quarantine_rate(event: dict[str, Any] | None = None) -> float:
    value = (event or {}).get("max_quarantine_rate") or os.environ.get("ETL_MAX_QUARANTINE_RATE")
    return float(value) if value is not None else DEFAULT_MAX_QUARANTINE_RATE


def run_date_of(value: Any, *, default_now: bool = False) -> date:
    """A `YYYY-MM-DD` date, or the date part of an ISO timestamp such as the scheduler's `2024-01-01T02:00:00Z`."""
    if value in (None, "") and default_now:
        return datetime.now(UTC).date()
    if not isinstance(value, str):
        raise BadEventError(f"run_date must be a 'YYYY-MM-DD' string, got {value!r}")
    try:
        return date.fromisoformat(value[:10])
    except ValueError as error:
        raise BadEventError(f"run_date {value!r} is not a date such as '2024-01-31'") from error


def landing_uri(source: str) -> str:
    """Where files of `source` land in the raw zone: `<raw>/<landing prefix><source>/`."""
    return pipeline.landing_uri(zones(), source, landing_prefix())


@cache
def sqs_client() -> Any:
    import boto3

    return boto3.client("sqs")
