"""What every handler shares: Powertools objects, the zones, settings from the environment and the SQS client."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

from etl_jobs import layout, pipeline
from etl_jobs.engines import DEFAULT_ENGINE, Engine, get_engine
from etl_jobs.handlers.events import BadEventError
from etl_jobs.zones import Zones

# Service name and namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE set per function.
logger = Logger()
metrics = Metrics()
tracer = Tracer()

__all__ = ["BadEventError", "engine", "landing_prefix", "logger", "max_quarantine_rate", "metrics", "tracer", "zones"]


def zones() -> Zones:
    return Zones.from_env()


def landing_prefix() -> str:
    return layout.check_landing_prefix(os.environ.get("ETL_LANDING_PREFIX") or layout.DEFAULT_LANDING_PREFIX)


def max_quarantine_rate(from_event: float | None = None) -> float:
    """The event's value (the orchestrator sends its gate's threshold), else ETL_MAX_QUARANTINE_RATE, else 0.10."""
    if from_event is not None:
        return from_event
    text = os.environ.get("ETL_MAX_QUARANTINE_RATE")
    if not text:
        return pipeline.DEFAULT_MAX_QUARANTINE_RATE
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"ETL_MAX_QUARANTINE_RATE={text!r} is not a number between 0 and 1")
    return value


def engine() -> Engine:
    return get_engine(os.environ.get("ETL_ENGINE") or DEFAULT_ENGINE)


@cache
def sqs_client() -> Any:
    import boto3

    return boto3.client("sqs")
