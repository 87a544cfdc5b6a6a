"""The Step Functions stage handlers' common shape: a typed `StageEvent` in, the stage result out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from etl_jobs.handlers._runtime import logger, metrics, tracer
from etl_jobs.handlers.events import StageEvent, stage_event

StageFunction = Callable[[StageEvent], dict[str, Any]]


def stage_handler(stage: str, work: StageFunction) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """A Lambda handler that parses the event and runs `work` with Powertools logging, tracing and metrics."""

    @logger.inject_lambda_context
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        parsed = stage_event(event)
        logger.append_keys(stage=stage, run_date=parsed.run_date.isoformat())
        result = work(parsed)
        logger.info("stage done", extra={"result_keys": sorted(result)})
        return result

    return handler


def per_source(event: StageEvent, work: Callable[[str | None], dict[str, Any]]) -> dict[str, Any]:
    """`work` once per source the event names (or once for every source); one result, or `{"results": [...]}`."""
    results = [work(name) for name in event.names()]
    return results[0] if len(results) == 1 else {"stage": results[0]["stage"], "results": results}
