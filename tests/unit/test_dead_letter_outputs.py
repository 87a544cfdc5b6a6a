"""Every dead-letter queue a component creates is in its outputs with both its URL and its ARN: docs/operations.md
redrives each DLQ with `aws sqs start-message-move-task --source-arn <ARN>` and reads it with `--queue-url <URL>`.

Each component is built from its args under mocks; its DLQs are the queues `components.queues.dead_letter_queue()`
made (each has a `<queue>-depth` alarm). The outputs are resolved by the same run, so the test compares the values
the mocks gave the queues with the values the outputs carry, under keys ending in `DeadLetterQueueUrl` / `Arn`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from components.architectures.base import ArchitectureArgs
from components.architectures.glue import Glue, GlueSettings
from components.architectures.serverless import Serverless, ServerlessSettings
from components.foundation.monitoring import Monitoring, MonitoringArgs
from components.functions import LambdaRunner, lambda_stage_budget
from components.orchestration import Orchestration, OrchestrationArgs
from components.stages import Stage
from etlctl.mocks import ACCOUNT_ID, Registration
from tests.support.components import REGION, foundation_refs, register

QUEUE = "aws:sqs/queue:Queue"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def _serverless() -> Serverless:
    return Serverless("sls", ArchitectureArgs(ServerlessSettings(), foundation_refs()))


def _glue() -> Glue:
    return Glue("glue", ArchitectureArgs(GlueSettings(), foundation_refs()))


def _orchestration() -> Orchestration:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:stage"
    runner = LambdaRunner(
        architecture="serverless",
        function_arns={stage: pulumi.Output.from_input(arn) for stage in Stage},
        budgets={stage: lambda_stage_budget(300) for stage in Stage},
    )
    args = OrchestrationArgs(
        foundation=foundation_refs(), sources=("orders",), runners=dict.fromkeys(Stage, runner), schedule="rate(1 day)"
    )
    return Orchestration("pipe", args)


def _monitoring() -> Monitoring:
    args = MonitoringArgs(
        key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/test",
        account_id=ACCOUNT_ID,
        region=REGION,
        alert_emails=["oncall@example.com"],
    )
    return Monitoring("mon", args)


def _build(make: Callable[[], Any]) -> tuple[list[Registration], dict[str, Any]]:
    """The registrations and the component's resolved `outputs()`."""
    resolved: dict[str, Any] = {}

    def program() -> None:
        component = make()
        pulumi.Output.from_input(component.outputs()).apply(resolved.update)

    registrations = register(program)
    assert resolved, "the outputs never resolved"
    return registrations, resolved


def _dead_letter_queues(registrations: list[Registration]) -> list[Registration]:
    alarmed = {r.name.removesuffix("-depth") for r in registrations if r.type == ALARM}
    return [r for r in registrations if r.type == QUEUE and r.name in alarmed]


def _dead_letter_outputs(value: Any, suffix: str) -> set[str]:
    """Every output value, at any depth, whose key ends in `DeadLetterQueue<suffix>`."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith(f"DeadLetterQueue{suffix}") and isinstance(item, str):
                found.add(item)
            else:
                found |= _dead_letter_outputs(item, suffix)
    elif isinstance(value, list):
        for item in value:
            found |= _dead_letter_outputs(item, suffix)
    return found


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (_serverless, {"sls-work-dlq", "sls-events-dlq"}),
        (_glue, {"glue-alerts-dlq", "glue-pipeline-schedule-dlq"}),
        (_orchestration, {"pipe-schedule-dlq"}),
        (_monitoring, {"mon-alerts-dlq"}),
    ],
    ids=["serverless", "glue", "orchestration", "monitoring"],
)
def test_every_dead_letter_queue_is_exported_with_its_url_and_arn(make: Callable[[], Any], expected: set[str]) -> None:
    registrations, outputs = _build(make)
    queues = _dead_letter_queues(registrations)
    assert {queue.name for queue in queues} == expected
    urls, arns = _dead_letter_outputs(outputs, "Url"), _dead_letter_outputs(outputs, "Arn")
    for queue in queues:
        assert queue.outputs["url"] in urls, f"{queue.name}: its URL is not among the outputs {sorted(urls)}"
        assert queue.outputs["arn"] in arns, f"{queue.name}: its ARN is not among the outputs {sorted(arns)}"


def test_a_stack_without_alert_emails_exports_no_alerts_queue() -> None:
    def program() -> Monitoring:
        return Monitoring(
            "mon",
            MonitoringArgs(key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/test", account_id=ACCOUNT_ID, region=REGION),
        )

    registrations, outputs = _build(program)
    assert _dead_letter_queues(registrations) == []
    assert set(outputs) == {"alertsTopicArn"}
