"""The ASL builder: every reference check with its exact message, rendering, reliability defaults, permissions, and
statelint on a definition per service integration. The pipeline built with it is tested in test_pipelines.py."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from statelint.linter import Linter

from components import asl

ACCOUNT = "123456789012"
FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:stage"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:alerts"
CLUSTER = f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/etl"
TASK_DEFINITION = f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/etl-transform:7"
TASK_ROLE = f"arn:aws:iam::{ACCOUNT}:role/etl-task"
EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/etl-execution"

COMMAND = "States.Array('transform', '--run-date', $.run_date)"


def _stage(name: str, kind: str, **options: Any) -> asl.Task:
    """One stage Task per service integration the platform uses."""
    if kind == "lambda":
        return asl.lambda_invoke(name, FUNCTION, **options)
    if kind == "ecs":
        return asl.ecs_run_task(
            name, cluster_arn=CLUSTER, task_definition_arn=TASK_DEFINITION, container_name="etl",
            subnet_ids=("subnet-a", "subnet-b"), security_group_ids=("sg-1",),
            pass_role_arns=(TASK_ROLE, EXECUTION_ROLE), command_path=COMMAND, **options,
        )  # fmt: skip
    if kind == "glue":
        job = f"arn:aws:glue:us-east-1:{ACCOUNT}:job/etl-transform"
        return asl.glue_start_job_run(name, job_arn=job, arguments={"--run-date.$": "$.run_date"}, **options)
    application = f"arn:aws:emr-serverless:us-east-1:{ACCOUNT}:/applications/00abc"
    return asl.emr_serverless_start_job_run(
        name, application_arn=application, execution_role_arn=EXECUTION_ROLE, entry_point="s3://artifacts/job.py",
        entry_point_arguments_path=COMMAND, **options,
    )  # fmt: skip


def _machine(*states: Any, **kwargs: Any) -> asl.StateMachine:
    return asl.StateMachine(states, **kwargs)


def _notify_and_fail() -> list[Any]:
    return [
        asl.sns_publish("Alert", TOPIC, message_path="States.JsonToString($)", catch=(asl.Catch("Failed"),),
                        next="Failed"),
        asl.Fail(name="Failed", error="PipelineFailed"),
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------------
# Reference checks
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("states", "kwargs", "message"),
    [
        (
            [asl.Pass(name="A", next="Missing")],
            {},
            "state 'A': Next 'Missing' is not a state of the state machine",
        ),
        (
            [asl.Pass(name="A", end=True)],
            {"start_at": "Nope"},
            "the state machine: StartAt 'Nope' is not a state of this scope",
        ),
        (
            [
                asl.Choice(name="A", choices=(asl.ChoiceRule(asl.IsPresent("$.x"), "B"),), default="Gone"),
                asl.Succeed(name="B"),
            ],
            {},
            "state 'A': Default 'Gone' is not a state of the state machine",
        ),
        (
            [
                asl.Choice(name="A", choices=(asl.ChoiceRule(asl.IsPresent("$.x"), "Gone"),), default="B"),
                asl.Succeed(name="B"),
            ],
            {},
            "state 'A': Choices[0].Next 'Gone' is not a state of the state machine",
        ),
        (
            [asl.Task(name="A", resource=FUNCTION, end=True, catch=(asl.Catch("Gone"),))],
            {},
            "state 'A': Catch[0].Next 'Gone' is not a state of the state machine",
        ),
        (
            [asl.Task(name="A", resource=FUNCTION, end=True)],
            {"defaults": asl.TaskDefaults(catch_next="Alert")},
            "state 'A': Catch[0].Next (default) 'Alert' is not a state of the state machine",
        ),
        (
            [asl.Pass(name="A", end=True), asl.Pass(name="Orphan", end=True)],
            {},
            "state 'Orphan' is unreachable from StartAt 'A' in the state machine",
        ),
        (
            [asl.Pass(name="A")],
            {},
            "state 'A' has neither Next nor End; set one so the state can finish",
        ),
        (
            [asl.Pass(name="A", next="B", end=True), asl.Succeed(name="B")],
            {},
            "state 'A' has both Next and End; keep one",
        ),
        (
            [asl.Pass(name="A", next="B"), asl.Pass(name="B", next="A")],
            {},
            "state 'A' can never reach a terminal state (Succeed, Fail or End) in the state machine",
        ),
        (
            [asl.Pass(name="A", next="A2"), asl.Pass(name="A2", next="A"), asl.Pass(name="A", end=True)],
            {},
            "duplicate state name 'A'; names must be unique in the whole machine",
        ),
        (
            [asl.Pass(name="N" * 81, end=True)],
            {},
            f"state name {'N' * 81!r} is 81 characters; the limit is 80",
        ),
        (
            [asl.Choice(name="A", choices=())],
            {},
            "Choice state 'A' has no Choices",
        ),
        (
            [asl.Parallel(name="P", branches=(), end=True, catch=())],
            {},
            "Parallel state 'P' has no branches",
        ),
        (
            [asl.Task(name="Alert", resource=FUNCTION, end=True)],
            {"defaults": asl.TaskDefaults(catch_next="Alert")},
            "state 'Alert': Catch[0] goes back to the state itself; give it an explicit catch (e.g. to a Fail state)",
        ),
        (
            [],
            {},
            "the state machine has no states",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 40 else None,
)
def test_reference_checks_name_the_state(states: list[Any], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(asl.DefinitionError) as raised:
        _machine(*states, **kwargs)
    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError)


def test_nested_scopes_are_checked_in_their_own_scope() -> None:
    # "Outer" exists, but not in the branch: a branch state cannot jump out of its scope.
    branch = asl.Branch((asl.Pass(name="Inner", next="Outer"),))
    with pytest.raises(asl.DefinitionError) as raised:
        _machine(asl.Parallel(name="P", branches=(branch,), next="Outer"), asl.Succeed(name="Outer"))
    assert str(raised.value) == "state 'Inner': Next 'Outer' is not a state of branch 0 of Parallel 'P'"


def test_map_processor_reachability_is_checked() -> None:
    processor = asl.Branch((asl.Pass(name="Work", end=True), asl.Pass(name="Stray", end=True)))
    with pytest.raises(asl.DefinitionError) as raised:
        _machine(asl.Map(name="M", item_processor=processor, end=True))
    assert str(raised.value) == "state 'Stray' is unreachable from StartAt 'Work' in item processor of Map 'M'"


def test_names_are_unique_across_nested_scopes() -> None:
    branch = asl.Branch((asl.Pass(name="Same", end=True),))
    with pytest.raises(asl.DefinitionError) as raised:
        _machine(asl.Parallel(name="P", branches=(branch,), next="Same"), asl.Succeed(name="Same"))
    assert str(raised.value) == "duplicate state name 'Same'; names must be unique in the whole machine"


def test_a_loop_with_an_exit_is_allowed() -> None:
    machine = _machine(
        asl.Pass(name="Pause", next="Check"),
        asl.Choice(name="Check", choices=(asl.ChoiceRule(asl.BooleanEquals("$.done", True), "Done"),), default="Pause"),
        asl.Succeed(name="Done"),
    )
    assert machine.to_dict()["States"]["Check"]["Default"] == "Pause"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: asl.Retry(("States.ALL", "States.Timeout")), "Retry: States.ALL must appear alone in error_equals"),
        (lambda: asl.Retry(("States.ALL",), backoff_rate=0.5), "Retry.backoff_rate must be >= 1.0, got 0.5"),
        (lambda: asl.NumericGreaterThan("rate", 1), "NumericGreaterThan variable must be a JSONPath starting with '$', "
                                                    "got 'rate'"),
        (lambda: asl.lambda_invoke("X", "not-an-arn", end=True),
         "state 'X': function_arn must be an ARN (arn:<partition>:<service>:...), got 'not-an-arn'"),
        (lambda: asl.sns_publish("X", TOPIC, end=True), "state 'X': give exactly one of message and message_path"),
    ],
)  # fmt: skip
def test_invalid_parts_are_rejected(build: Any, message: str) -> None:
    with pytest.raises(asl.DefinitionError, match=f"^{re.escape(message)}$"):
        build()


# ---------------------------------------------------------------------------------------------------------------------
# Rendering and defaults
# ---------------------------------------------------------------------------------------------------------------------


def test_rendering_is_deterministic_and_complete() -> None:
    def build() -> asl.StateMachine:
        return _machine(
            asl.lambda_invoke("Extract", FUNCTION, result_path="$.extract", next="Gate"),
            asl.Choice(
                name="Gate",
                choices=(asl.ChoiceRule(asl.And(asl.IsPresent("$.extract"), asl.Not(asl.StringEquals("$.s", "x")),
                                                asl.Or(asl.NumericGreaterThan("$.n", 1))), "Done"),),
                default="Alert",
            ),
            asl.Succeed(name="Done"),
            *_notify_and_fail(),
            comment="demo",
            timeout_seconds=600,
            defaults=asl.TaskDefaults(catch_next="Alert"),
        )  # fmt: skip

    first, second = build().to_json(), build().to_json()
    assert first == second
    rendered = json.loads(first)
    assert rendered["StartAt"] == "Extract"
    assert rendered["Comment"] == "demo"
    assert rendered["TimeoutSeconds"] == 600
    assert rendered["States"]["Gate"]["Choices"][0] == {
        "And": [
            {"Variable": "$.extract", "IsPresent": True},
            {"Not": {"Variable": "$.s", "StringEquals": "x"}},
            {"Or": [{"Variable": "$.n", "NumericGreaterThan": 1}]},
        ],
        "Next": "Done",
    }
    extract = rendered["States"]["Extract"]
    assert extract["Resource"] == "arn:aws:states:::lambda:invoke"
    assert extract["Parameters"] == {"FunctionName": FUNCTION, "Payload.$": "$"}
    assert extract["ResultSelector"] == {"Payload.$": "$.Payload"}
    assert list(json.loads(first)) == sorted(json.loads(first))  # keys sorted: stable text
    assert Linter.validate(rendered) == []


def _all_tasks(definition: dict[str, Any]) -> list[tuple[dict[str, Any], bool]]:
    """Every Task of a rendered definition with whether it is at the top level."""
    found: list[tuple[dict[str, Any], bool]] = []

    def walk(states: dict[str, Any], top: bool) -> None:
        for state in states.values():
            if state["Type"] == "Task":
                found.append((state, top))
            for branch in state.get("Branches", []):
                walk(branch["States"], False)
            if "ItemProcessor" in state:
                walk(state["ItemProcessor"]["States"], False)

    walk(definition["States"], True)
    return found


def _workflow_definitions() -> dict[str, asl.StateMachine]:
    """For each integration: the stage at the top level, then twice inside a Map; reading a result; alerting."""
    machines: dict[str, asl.StateMachine] = {}
    for kind in ("lambda", "ecs", "glue", "emr"):
        inner = asl.Branch(
            (_stage(f"{kind} item", kind, next=f"{kind} again"), _stage(f"{kind} again", kind, end=True))
        )
        machines[kind] = asl.StateMachine(
            (
                _stage("Stage", kind, result_path="$.stage", next="Read"),
                asl.s3_get_object(
                    "Read", "etl-artifacts", key_path="States.Format('results/{}.json', $$.Execution.Name)",
                    key_prefix="results/", result_path="$.result", next="Each",
                ),
                asl.Map(name="Each", items_path="$.items", item_processor=inner, result_path="$.each", next="Done"),
                asl.Succeed(name="Done"),
                *_notify_and_fail(),
            ),
            defaults=asl.TaskDefaults(catch_next="Alert"),
        )  # fmt: skip
    return machines


WORKFLOWS = _workflow_definitions()


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_every_task_has_the_reliability_defaults(name: str) -> None:
    definition = WORKFLOWS[name].to_dict()
    tasks = _all_tasks(definition)
    assert tasks
    for task, top_level in tasks:
        assert task["TimeoutSeconds"] > 0
        assert task["Retry"], task
        for retrier in task["Retry"]:
            assert retrier["BackoffRate"] == 2.0
            assert retrier["MaxDelaySeconds"] > 0
            assert retrier["JitterStrategy"] == "FULL"
        if top_level:
            assert task["Catch"][0]["ErrorEquals"] == ["States.ALL"]
            assert task["Catch"][0]["ResultPath"]
    # Nested tasks propagate their errors to the Parallel/Map, which catches them.
    for state in definition["States"].values():
        if state["Type"] in ("Parallel", "Map"):
            assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "Next": "Alert", "ResultPath": "$.error"}]


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_every_workflow_definition_passes_statelint(name: str) -> None:
    assert Linter.validate(WORKFLOWS[name].to_json()) == []


def test_statelint_would_catch_a_broken_definition() -> None:
    # Guards the test above: the linter is really checking.
    broken = {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": FUNCTION, "Next": "B"}}}
    assert Linter.validate(broken)


def test_defaults_can_be_overridden_per_task() -> None:
    retry = (asl.Retry(("Custom.Error",), interval_seconds=3, max_attempts=1),)
    machine = _machine(
        asl.lambda_invoke("Work", FUNCTION, retry=retry, timeout_seconds=30,
                          catch=(asl.Catch("Alert", result_path="$.e"),), end=True),
        *_notify_and_fail(),
        defaults=asl.TaskDefaults(catch_next="Alert", timeout_seconds=900),
    )  # fmt: skip
    work = machine.to_dict()["States"]["Work"]
    assert work["Retry"] == [retry[0].to_dict()]
    assert work["TimeoutSeconds"] == 30
    assert work["Catch"] == [{"ErrorEquals": ["States.ALL"], "Next": "Alert", "ResultPath": "$.e"}]


def test_ecs_task_runs_private_and_builds_its_command_from_the_input() -> None:
    task = asl.ecs_run_task(
        "Transform", cluster_arn=CLUSTER, task_definition_arn=TASK_DEFINITION, container_name="etl",
        subnet_ids=["subnet-a"], security_group_ids=["sg-1"], pass_role_arns=[TASK_ROLE],
        command_path="States.Array('transform', '--run-date', $.run_date)", capacity_provider="FARGATE_SPOT", end=True,
    )  # fmt: skip
    assert task.resource == "arn:aws:states:::ecs:runTask.sync"
    assert task.parameters is not None
    assert task.parameters["NetworkConfiguration"] == {
        "AwsvpcConfiguration": {"Subnets": ["subnet-a"], "SecurityGroups": ["sg-1"], "AssignPublicIp": "DISABLED"}
    }
    assert task.parameters["CapacityProviderStrategy"] == [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]
    assert "LaunchType" not in task.parameters
    assert task.parameters["Overrides"] == {
        "ContainerOverrides": [{"Name": "etl", "Command.$": "States.Array('transform', '--run-date', $.run_date)"}]
    }


# ---------------------------------------------------------------------------------------------------------------------
# Permissions
# ---------------------------------------------------------------------------------------------------------------------

_EXPLICIT_ARN = re.compile(r"^arn:aws:[a-z0-9-]+:[a-z0-9-]*:(\d{12})?:[^*]+(/\*|:\*)?$")


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_permissions_have_no_wildcard_action_and_only_explicit_arns(name: str) -> None:
    statements = WORKFLOWS[name].required_permissions()
    assert statements
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for action in statement["Action"]:
            assert "*" not in action
        for resource in statement["Resource"]:
            assert _EXPLICIT_ARN.match(resource), resource


def test_ecs_pipeline_permissions_are_exactly_what_runtask_sync_needs() -> None:
    by_action = {tuple(statement["Action"]): statement for statement in WORKFLOWS["ecs"].required_permissions()}
    assert by_action[("ecs:RunTask",)]["Resource"] == [
        f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/etl-transform:*"
    ]
    assert by_action[("ecs:DescribeTasks", "ecs:StopTask")]["Resource"] == [
        f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/etl/*"
    ]
    assert by_action[("iam:PassRole",)] == {
        "Effect": "Allow",
        "Action": ["iam:PassRole"],
        "Resource": [EXECUTION_ROLE, TASK_ROLE],
        "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
    }
    assert by_action[("events:DescribeRule", "events:PutRule", "events:PutTargets")]["Resource"] == [
        f"arn:aws:events:us-east-1:{ACCOUNT}:rule/StepFunctionsGetEventsForECSTaskRule"
    ]
    assert by_action[("s3:GetObject",)]["Resource"] == ["arn:aws:s3:::etl-artifacts/results/*"]
    assert by_action[("sns:Publish",)]["Resource"] == [TOPIC]
    assert len(by_action) == 6


def test_lambda_permissions_cover_versions_and_are_merged() -> None:
    assert WORKFLOWS["lambda"].required_permissions() == [
        {"Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": [FUNCTION, f"{FUNCTION}:*"]},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::etl-artifacts/results/*"]},
        {"Effect": "Allow", "Action": ["sns:Publish"], "Resource": [TOPIC]},
    ]


def test_partition_comes_from_the_arns() -> None:
    china_function = f"arn:aws-cn:lambda:cn-north-1:{ACCOUNT}:function:stage"
    task = asl.lambda_invoke("Work", china_function, end=True)
    assert task.resource == "arn:aws-cn:states:::lambda:invoke"


# ---------------------------------------------------------------------------------------------------------------------
# Wait and the Redshift Data API (the warehouse load's poll loop)
# ---------------------------------------------------------------------------------------------------------------------

WORKGROUP = f"arn:aws:redshift-serverless:us-east-1:{ACCOUNT}:workgroup/0a1b"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:redshift!wg-admin-abc123"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k"


def _submit(name: str, sqls: tuple[str, ...], **options: Any) -> asl.Task:
    return asl.redshift_data_execute(
        name, workgroup_arn=WORKGROUP, workgroup_name="wg", database="analytics", secret_arn=SECRET, key_arn=KEY,
        sqls=sqls, statement_name="load", **options,
    )  # fmt: skip


def test_one_statement_is_executed_several_are_batched() -> None:
    one = _submit("One", ("SELECT 1",), end=True).render(asl.TaskDefaults(), top_level=False)
    several = _submit("Several", ("SELECT 1", "SELECT 2"), end=True).render(asl.TaskDefaults(), top_level=False)
    assert one["Resource"] == "arn:aws:states:::aws-sdk:redshiftdata:executeStatement"
    assert one["Parameters"]["Sql"] == "SELECT 1" and "Sqls" not in one["Parameters"]
    assert several["Resource"] == "arn:aws:states:::aws-sdk:redshiftdata:batchExecuteStatement"
    assert several["Parameters"]["Sqls"] == ["SELECT 1", "SELECT 2"]
    assert several["Parameters"]["SecretArn"] == SECRET and several["ResultSelector"] == {"Id.$": "$.Id"}
    with pytest.raises(asl.DefinitionError, match="state 'None': no SQL to run"):
        _submit("None", ())


def test_a_poll_loop_with_a_way_out_is_a_valid_machine_and_asks_for_its_permissions() -> None:
    machine = asl.StateMachine(
        (
            _submit("Submit", ("SELECT 1",), result_path="$.statement", next="Pause"),
            asl.Wait(name="Pause", seconds=5, next="Check"),
            asl.redshift_data_describe("Check", id_path="$.statement.Id", result_path="$.status", next="Done"),
            asl.Choice(
                name="Done",
                choices=(asl.ChoiceRule(asl.StringEquals("$.status.Status", "FINISHED"), "Finished"),),
                default="Pause",
            ),
            asl.Succeed(name="Finished"),
        )
    )
    rendered = machine.to_dict()
    assert rendered["States"]["Pause"] == {"Type": "Wait", "Seconds": 5, "Next": "Check"}
    assert Linter.validate(machine.to_json()) == []
    granted = {tuple(s["Action"]): s for s in machine.required_permissions()}
    assert granted[("redshift-data:ExecuteStatement",)]["Resource"] == [WORKGROUP]
    assert granted[("secretsmanager:GetSecretValue",)]["Resource"] == [SECRET]
    assert granted[("kms:Decrypt",)]["Condition"] == {
        "StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
    }
    assert granted[("redshift-data:DescribeStatement",)]["Condition"] == asl.REDSHIFT_DATA_OWN_STATEMENTS


def test_a_wait_of_no_time_is_refused() -> None:
    with pytest.raises(asl.DefinitionError, match="Wait state 'Pause': Seconds must be >= 1, got 0"):
        asl.Wait(name="Pause", seconds=0, next="Check")
