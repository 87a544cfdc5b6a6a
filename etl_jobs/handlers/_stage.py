"""The Step Functions stage handlers' common shape: `{"run_date", "source", "input"}` in, the stage dict out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from etl_jobs.handlers._runtime import logger, metrics, run_date_of, tracer

StageFunction = Callable[[dict[str, Any]], dict[str, Any]]


def stage_handler(stage: str, work: StageFunction) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """A Lambda handler that runs `work(event)` with Powertools logging, tracing and metrics flushing."""

    @logger.inject_lambda_context
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        logger.append_keys(stage=stage, run_date=event.get("run_date"))
        result = work(event)
        logger.info("stage done", extra={"result_keys": sorted(result)})
        return result

    return handler


__all__ = ["run_date_of", "stage_handler"]
