"""The orchestration component built from its args under mocks: the state machine's logging, tracing, encryption and
naming (CONTROLS rows 51-53), its derived role, the schedule with its dead-letter queue (row 55), alarms (row 54),
and the EXPRESS refusal."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from components.functions import LambdaRunner, lambda_stage_budget
from components.orchestration import SCHEDULED_INPUT, MachineType, Orchestration, OrchestrationArgs
from components.policies import ACTIONS_REQUIRING_STAR, STATES_LOG_DELIVERY_ACTIONS, wildcard_actions
from components.settings import ConfigError, Environment
from components.stages import Stage, StageBudget
from etlctl.mocks import Registration
from tests.support.components import foundation_refs, one, register
from tests.support.definitions import MACHINE, arn_of, definition_of, states
from tests.support.resources import policy, statements

FUNCTION = "arn:aws:lambda:eu-west-1:123456789012:function:etl-{}"


def runner(timeout: int = 300) -> LambdaRunner:
    return LambdaRunner(
        architecture="serverless",
        function_arns={s: pulumi.Output.from_input(FUNCTION.format(s.value)) for s in Stage},
        budgets={s: lambda_stage_budget(timeout) for s in Stage},
    )


def build(*, environment: Environment = Environment.DEV, preview: bool = False, **changes: Any) -> list[Registration]:
    def program() -> None:
        args: dict[str, Any] = {
            "foundation": foundation_refs(environment),
            "sources": ("orders",),
            "runners": dict.fromkeys(Stage, runner()),
            "schedule": "cron(0 2 * * ? *)",
            "max_quarantine_rate": 0.05,
            "settings_key": "etl-platform:stepfunctions",
            **changes,
        }
        Orchestration("etl-test", OrchestrationArgs(**args))

    return register(program, preview=preview)


@pytest.fixture(scope="module")
def built() -> list[Registration]:
    return build()


def test_the_machine_logs_everything_to_a_vended_encrypted_group_and_traces(built: list[Registration]) -> None:
    machine = one(built, MACHINE)
    logging = machine.inputs["loggingConfiguration"]
    assert logging["level"] == "ALL" and logging["includeExecutionData"] is True
    group = one(built, "aws:cloudwatch/logGroup:LogGroup")
    assert group.inputs["name"] == "/aws/vendedlogs/states/etl-test"
    assert group.inputs["kmsKeyId"].endswith(":key/test")
    assert group.inputs["retentionInDays"] == foundation_refs().audit_log_retention_days
    assert logging["logDestination"].endswith(":*")
    assert machine.inputs["tracingConfiguration"] == {"enabled": True}
    encryption = machine.inputs["encryptionConfiguration"]
    assert encryption["type"] == "CUSTOMER_MANAGED_KMS_KEY" and encryption["kmsKeyId"].endswith(":key/test")


def test_the_machine_is_auto_named_so_a_replacement_never_collides(built: list[Registration]) -> None:
    """A type change replaces the machine; with create-before-delete a fixed name would be taken by the old one."""
    assert "name" not in one(built, MACHINE).inputs


def test_the_role_is_what_the_definition_needs_and_nothing_wildcarded(built: list[Registration]) -> None:
    machine = one(built, MACHINE)
    (role,) = [r for r in built if r.type == "aws:iam/rolePolicy:RolePolicy" and r.name == "etl-test-role-policy"]
    document = policy(role.inputs["policy"])
    granted = {action for s in statements(document) for action in s["Action"]}
    assert "lambda:InvokeFunction" in granted and "sns:Publish" in granted
    invoked = {t["Parameters"]["FunctionName"] for t in _tasks(definition_of(machine), ":lambda:invoke")}
    invoke = next(s for s in statements(document) if s["Action"] == ["lambda:InvokeFunction"])
    assert set(invoke["Resource"]) == invoked | {f"{arn}:*" for arn in invoked}
    assert set(STATES_LOG_DELIVERY_ACTIONS) <= granted
    assert wildcard_actions(document) == []
    on_star = {a for s in statements(document) if "*" in s["Resource"] for a in s["Action"]}
    assert on_star <= set(ACTIONS_REQUIRING_STAR)


def _tasks(definition: dict[str, Any], resource: str) -> list[dict[str, Any]]:
    found = []
    for state in definition["States"].values():
        if state["Type"] == "Task" and state["Resource"].endswith(resource):
            found.append(state)
        if "ItemProcessor" in state:
            found += _tasks(state["ItemProcessor"], resource)
    return found


def test_the_schedule_starts_a_dated_run_with_retries_and_dead_letters(built: list[Registration]) -> None:
    schedule = one(built, "aws:scheduler/schedule:Schedule")
    target = schedule.inputs["target"]
    assert json.loads(target["input"]) == SCHEDULED_INPUT == {"run_date": "<aws.scheduler.scheduled-time>"}
    assert target["retryPolicy"]["maximumRetryAttempts"] == 3
    queue = one(built, "aws:sqs/queue:Queue")
    assert target["deadLetterConfig"]["arn"] == arn_of(queue)
    assert schedule.inputs["kmsKeyArn"].endswith(":key/test")
    assert schedule.inputs["scheduleExpression"] == "cron(0 2 * * ? *)"
    roles = [policy(r.inputs["policy"]) for r in built if r.type == "aws:iam/rolePolicy:RolePolicy"]
    scheduler = next(doc for doc in roles if any("states:StartExecution" in s["Action"] for s in statements(doc)))
    by_action = {action: s["Resource"] for s in statements(scheduler) for action in s["Action"]}
    assert {a for a in by_action if not a.startswith("kms:")} == {"states:StartExecution", "sqs:SendMessage"}
    assert by_action["sqs:SendMessage"] == [arn_of(queue)]
    assert all(
        by_action[a] == ["arn:aws:kms:eu-west-1:123456789012:key/test"] for a in by_action if a.startswith("kms:")
    )


def _alarmed(registrations: list[Registration]) -> set[str]:
    return {r.inputs["metricName"] for r in registrations if r.type == "aws:cloudwatch/metricAlarm:MetricAlarm"}


def test_staging_and_prod_also_alarm_on_throttled_transitions_and_a_stream_watches_no_landing() -> None:
    for environment in (Environment.STAGING, Environment.PROD):
        assert "ExecutionThrottled" in _alarmed(build(environment=environment))
    assert "OldestWaitingLandedFileSeconds" not in _alarmed(build(watches_landing=False))


def test_alarms_watch_executions_and_the_dead_letters(built: list[Registration]) -> None:
    alarms = {r.inputs["metricName"]: r for r in built if r.type == "aws:cloudwatch/metricAlarm:MetricAlarm"}
    # dev leaves the diagnostic ones out (Profile.diagnostic_alarms): throttled transitions delay a run, never fail it.
    assert set(alarms) == {
        "ExecutionsFailed",
        "ExecutionsTimedOut",
        "ApproximateNumberOfMessagesVisible",
        "OldestWaitingLandedFileSeconds",
    }
    for alarm in alarms.values():
        assert alarm.inputs["alarmActions"] == ["arn:aws:sns:eu-west-1:123456789012:alerts"]
    # The landing metric the definition's ReportLanding publishes is the one alarmed, under the same dimension.
    landing = alarms["OldestWaitingLandedFileSeconds"].inputs
    every = states(definition_of(one(built, MACHINE))).values()
    (report,) = [state for state in every if state.get("Resource", "").endswith("putMetricData")]
    (datum,) = report["Parameters"]["MetricData"]
    assert landing["namespace"] == report["Parameters"]["Namespace"]
    assert landing["dimensions"] == {d["Name"]: d["Value"] for d in datum["Dimensions"]}
    assert landing["statistic"] == "Maximum" and landing["threshold"] == 6 * 3600


def test_prod_protects_the_logs_and_the_dead_letters() -> None:
    registrations = build(environment=Environment.PROD)
    stateful = [r.type for r in registrations if r.protect]
    assert sorted(stateful) == ["aws:cloudwatch/logGroup:LogGroup", "aws:sqs/queue:Queue"]


def test_preview_registers_the_same_resources(built: list[Registration]) -> None:
    preview = build(preview=True)
    assert sorted((r.type, r.name) for r in preview) == sorted((r.type, r.name) for r in built)


def test_express_is_refused_when_a_run_can_outlast_five_minutes() -> None:
    with pytest.raises(ConfigError) as caught:
        build(machine_type=MachineType.EXPRESS)
    assert str(caught.value).startswith("etl-platform:stepfunctions.type: EXPRESS does not fit this pipeline: a run")
    quick = LambdaRunner(
        architecture="serverless",
        function_arns=runner().function_arns,
        budgets={s: StageBudget(timeout_seconds=10, retry=()) for s in Stage},
    )
    registrations = build(machine_type=MachineType.EXPRESS, runners=dict.fromkeys(Stage, quick))
    assert one(registrations, MACHINE).inputs["type"] == "EXPRESS"


def test_every_stage_needs_a_runner() -> None:
    with pytest.raises(ConfigError, match="etl-platform:stepfunctions: no stage runner for validate, load"):
        build(runners={Stage.EXTRACT: runner(), Stage.TRANSFORM: runner()})
