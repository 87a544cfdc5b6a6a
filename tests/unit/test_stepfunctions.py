"""The stepfunctions architecture under mocks: CONTROLS rows 51-55 on recorded inputs, the rendered definition
(statelint, reliability defaults, exactly the engines chosen), least-privilege roles, and config errors."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components import workflows
from components.architectures.stepfunctions import (
    SCHEDULED_INPUT,
    STAGE_HANDLERS,
    VALIDATION_PREFIX,
    build_definition,
    resolve_engines,
    role_policy,
)
from components.policies import ACTIONS_REQUIRING_STAR, STATES_LOG_DELIVERY_ACTIONS, wildcard_actions
from components.refs import EcsEngineRef, LambdaEngineRef
from components.settings import ArchitectureName, Stage, StepFunctionsSettings
from etlctl.mocks import PlatformMocks, Registration
from etlctl.offline import Evaluation, ProgramError
from tests.conftest import ROOT, evaluate_config
from tests.unit.resources import as_list, named, of_type, policy, statements

STATELINT = ROOT / ".venv" / "bin" / "statelint"
SOURCES = ["orders", "customers"]
MACHINE = "aws:sfn/stateMachine:StateMachine"
PREFIX = "etl-platform-stepfunctions"


def _config(environment: str, architectures: list[str], **stepfunctions: Any) -> dict[str, object]:
    config: dict[str, object] = {
        "aws:region": "eu-west-1",
        "etl-platform:environment": environment,
        "etl-platform:architectures": architectures,
    }
    if stepfunctions:
        config["etl-platform:stepfunctions"] = stepfunctions
    return config


CONFIGS: dict[str, dict[str, object]] = {
    "alone": _config("dev", ["stepfunctions"], sources=SOURCES, maxConcurrency=3, maxQuarantineRate=0.05),
    "alone-prod": _config("prod", ["stepfunctions"]),
    "serverless": _config(
        "dev", ["serverless", "stepfunctions"], engines={"extract": "serverless", "transform": "serverless"}
    ),
    "containers": _config("dev", ["containers", "stepfunctions"], engines={"transform": "containers"}),
}
NEEDS = {"serverless": "components.architectures.serverless", "containers": "components.architectures.containers"}


def _require(name: str) -> None:
    module = NEEDS.get(name)
    if module and importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} has not landed yet; the '{name}' engine cannot be selected")


_cache: dict[tuple[str, bool], Evaluation] = {}


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Evaluation]]:
    def get(name: str, *, preview: bool = False) -> Evaluation:
        _require(name)
        key = (name, preview)
        if key not in _cache:
            _cache[key] = evaluate_config(tmp_path_factory.mktemp(name), CONFIGS[name], preview=preview)
        return _cache[key]

    yield get
    _cache.clear()


@pytest.fixture(scope="module")
def alone(evaluation: Callable[..., Evaluation]) -> Evaluation:
    return evaluation("alone")


def ours(evaluation: Evaluation, token: str) -> list[Registration]:
    return [r for r in of_type(evaluation, token) if r.name.startswith(PREFIX)]


def machine(evaluation: Evaluation) -> Registration:
    (found,) = ours(evaluation, MACHINE)
    return found


def definition(evaluation: Evaluation) -> dict[str, Any]:
    rendered = machine(evaluation).inputs["definition"]
    assert isinstance(rendered, str), "the definition is resolved in update mode"
    parsed: dict[str, Any] = json.loads(rendered)
    return parsed


def walk_states(scope: dict[str, Any], top_level: bool = True) -> Iterator[tuple[str, dict[str, Any], bool]]:
    for state_name, state in scope["States"].items():
        yield state_name, state, top_level
        for branch in state.get("Branches", []):
            yield from walk_states(branch, top_level=False)
        if "ItemProcessor" in state:
            yield from walk_states(state["ItemProcessor"], top_level=False)


def tasks(scope: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
    return [item for item in walk_states(scope) if item[1]["Type"] == "Task"]


def function_arns(evaluation: Evaluation) -> dict[str, str]:
    """Own Lambda ARNs by function resource name, as the mocks computed them."""
    return {r.name: _arn_of(evaluation, r) for r in ours(evaluation, "aws:lambda/function:Function")}


def _arn_of(evaluation: Evaluation, registration: Registration) -> str:
    """The ARN the mocks gave a resource (registrations record inputs; the mocks derive ARNs from type and name)."""
    _, state = PlatformMocks(region=evaluation.config.region or "eu-west-1")._created(
        registration.type, registration.name, registration.inputs
    )
    return str(state["arn"])


def statelint(document: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "definition.json"
    path.write_text(document)
    return subprocess.run([str(STATELINT), str(path)], capture_output=True, text=True, check=False)


# ---------------------------------------------------------------------------------------------------------------------
# Row 51: logging ALL with execution data, tracing
# ---------------------------------------------------------------------------------------------------------------------


def test_state_machine_logs_everything_to_its_group_and_traces(alone: Evaluation) -> None:
    inputs = machine(alone).inputs
    group = named(alone, "stepfunctions-executions")
    logging = inputs["loggingConfiguration"]
    assert logging["level"] == "ALL"
    assert logging["includeExecutionData"] is True
    assert logging["logDestination"] == f"arn:aws:logs:eu-west-1:123456789012:log-group:{group.inputs['name']}:*"
    assert inputs["tracingConfiguration"] == {"enabled": True}
    assert inputs["type"] == "STANDARD"
    assert inputs["encryptionConfiguration"]["type"] == "CUSTOMER_MANAGED_KMS_KEY"
    assert inputs["encryptionConfiguration"]["kmsKeyId"].endswith(":key/" + _key_id(alone))


def _key_id(evaluation: Evaluation) -> str:
    (key,) = of_type(evaluation, "aws:kms/key:Key")
    return _arn_of(evaluation, key).rsplit("/", 1)[-1]


# ---------------------------------------------------------------------------------------------------------------------
# Row 53: log groups with retention and the stack key
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "audit_days"), [("alone", 30), ("alone-prod", 365)])
def test_execution_log_group_is_vended_encrypted_and_kept_for_audit(
    name: str, audit_days: int, evaluation: Callable[..., Evaluation]
) -> None:
    stack = evaluation(name)
    group = named(stack, "stepfunctions-executions")
    assert group.inputs["name"] == f"/aws/vendedlogs/states/{PREFIX}-dev"
    assert group.inputs["retentionInDays"] == audit_days
    assert group.inputs["kmsKeyId"].endswith(_key_id(stack))
    assert group.protect is (name == "alone-prod") and group.retain_on_delete is (name == "alone-prod")
    for log_group in ours(stack, "aws:cloudwatch/logGroup:LogGroup"):
        assert log_group.inputs["retentionInDays"] > 0, log_group.name
        assert log_group.inputs["kmsKeyId"].endswith(_key_id(stack)), log_group.name


# ---------------------------------------------------------------------------------------------------------------------
# Row 52: every Task retries with backoff and jitter, times out, and reaches the alert path
# ---------------------------------------------------------------------------------------------------------------------


def test_every_task_retries_times_out_and_is_caught(alone: Evaluation) -> None:
    rendered = definition(alone)
    found = tasks(rendered)
    assert len(found) == len(SOURCES) + 5  # one extract per source, transform, validate, load, two notices
    for state_name, task, top_level in found:
        assert task["TimeoutSeconds"] > 0, state_name
        assert task["Retry"], state_name
        for retrier in task["Retry"]:
            assert retrier["BackoffRate"] == 2.0, state_name
            assert retrier["MaxDelaySeconds"] > 0, state_name
            assert retrier["JitterStrategy"] == "FULL", state_name
        if top_level:
            (catch,) = task["Catch"]
            assert catch["ErrorEquals"] == ["States.ALL"], state_name
            expected = "Failed" if state_name == "NotifyFailure" else "NotifyFailure"
            assert catch["Next"] == expected, state_name
    # Nested Tasks fail their Parallel/Map, which catches into the alert path.
    for state_name in ("ExtractSources", "TransformPartitions"):
        state = rendered["States"][state_name]
        assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "Next": "NotifyFailure", "ResultPath": "$.error"}]


def test_definition_is_the_configured_pipeline(alone: Evaluation) -> None:
    rendered = definition(alone)
    states = rendered["States"]
    assert rendered["StartAt"] == "RunDate"
    assert rendered["TimeoutSeconds"] == 3600
    branches = states["ExtractSources"]["Branches"]
    assert [b["States"][b["StartAt"]]["Parameters"]["source"] for b in branches] == SOURCES
    assert states["TransformPartitions"]["MaxConcurrency"] == 3
    gate = json.dumps(states["QualityGate"]["Choices"])
    assert '"NumericGreaterThan": 0.05' in gate
    (topic,) = of_type(alone, "aws:sns/topic:Topic")
    topic_arn = _arn_of(alone, topic)
    for notice in ("NotifySuccess", "NotifyFailure"):
        assert states[notice]["Resource"] == "arn:aws:states:::sns:publish"
        assert states[notice]["Parameters"]["TopicArn"] == topic_arn


def test_first_states_turn_the_scheduled_time_into_a_run_date(alone: Evaluation) -> None:
    states = definition(alone)["States"]
    rule = states["RunDate"]["Choices"][0]
    assert rule == {"Variable": "$.run_date", "IsPresent": True, "Next": "RunDateFromInput"}
    assert states["RunDate"]["Default"] == "RunDateFromStartTime"
    from_input = states["RunDateFromInput"]["Parameters"]["run_date.$"]
    assert from_input == "States.ArrayGetItem(States.StringSplit($.run_date, 'T'), 0)"
    assert "$$.Execution.StartTime" in states["RunDateFromStartTime"]["Parameters"]["run_date.$"]
    assert states["RunDateFromInput"]["Next"] == states["RunDateFromStartTime"]["Next"] == "ExtractSources"


def test_rendered_definition_passes_statelint(alone: Evaluation, tmp_path: Path) -> None:
    result = statelint(machine(alone).inputs["definition"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = statelint(json.dumps({"StartAt": "Missing", "States": {}}), tmp_path)
    assert broken.returncode != 0, "statelint must reject a broken definition (guards the check above)"


# ---------------------------------------------------------------------------------------------------------------------
# Own Lambdas: one per stage on the orchestrator, exactly those referenced
# ---------------------------------------------------------------------------------------------------------------------


def test_own_lambdas_run_the_stage_handlers_and_are_the_ones_invoked(alone: Evaluation) -> None:
    functions = ours(alone, "aws:lambda/function:Function")
    assert sorted(f.inputs["handler"] for f in functions) == sorted(STAGE_HANDLERS.values())
    invoked = {t["Parameters"]["FunctionName"] for _, t, _ in tasks(definition(alone)) if "lambda" in t["Resource"]}
    assert invoked == set(function_arns(alone).values())
    transform = next(f for f in functions if "-transform-" in f.name)
    assert transform.inputs["reservedConcurrentExecutions"] == 3  # the Map's concurrency
    assert all(f.inputs["timeout"] < 900 for f in functions), "below the Task timeout"
    (layer,) = ours(alone, "aws:lambda/layerVersion:LayerVersion")
    assert all(f.inputs["layers"] == [_arn_of(alone, layer)] for f in functions), "the dependency layer"
    assert layer.inputs["s3Key"].startswith("lambda/layers/"), "above the direct-upload limit: through S3"
    # Each stage's role reaches only its zones: extract never touches curated, load never raw.
    (curated,) = [b for b in of_type(alone, "aws:s3/bucket:Bucket") if "curated" in b.name]
    (raw,) = [b for b in of_type(alone, "aws:s3/bucket:Bucket") if "lake-raw" in b.name]
    extract_policy = json.dumps(_role_policy(alone, "stepfunctions-extract-policy"))
    load_policy = json.dumps(_role_policy(alone, "stepfunctions-load-policy"))
    assert _arn_of(alone, curated) not in extract_policy and _arn_of(alone, raw) in extract_policy
    assert _arn_of(alone, raw) not in load_policy and _arn_of(alone, curated) in load_policy


def test_stage_handlers_exist_in_etl_jobs() -> None:
    if importlib.util.find_spec("etl_jobs.handlers") is None or not any(
        (ROOT / "etl_jobs" / "handlers").glob("stage_*.py")
    ):
        pytest.skip("etl_jobs/handlers/stage_*.py has not landed yet")
    for handler in STAGE_HANDLERS.values():
        module, _, function = handler.rpartition(".")
        assert hasattr(importlib.import_module(module), function), handler


# ---------------------------------------------------------------------------------------------------------------------
# IAM: derived least privilege, no wildcard actions, ARNs the machine uses
# ---------------------------------------------------------------------------------------------------------------------


def _role_policy(evaluation: Evaluation, suffix: str) -> dict[str, Any]:
    return policy(named(evaluation, suffix).inputs["policy"])


def _used_arns(evaluation: Evaluation) -> set[str]:
    arns: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)
        elif isinstance(value, str) and value.startswith("arn:"):
            arns.add(value)

    collect(definition(evaluation))
    return arns


def _used_by_the_machine(resource: str, item: dict[str, Any], used: set[str], stack: Evaluation) -> bool:
    """A granted resource is an ARN the definition names, or follows from one by the integration's rules."""
    actions = as_list(item["Action"])
    if resource in used or resource.removesuffix(":*") in used:  # Lambda versions/aliases: function:name:*
        return True
    if resource == f"arn:aws:kms:eu-west-1:123456789012:key/{_key_id(stack)}":
        return True  # the stack key: state data and logs
    if ":task-definition/" in resource and resource.endswith(":*"):  # any revision of a family the machine runs
        return any(arn.startswith(resource[:-1]) for arn in used)
    if ":task/" in resource and resource.endswith("/*"):  # tasks of a cluster the machine runs on
        cluster = resource.split(":task/", 1)[1].removesuffix("/*")
        return any(arn.endswith(f":cluster/{cluster}") for arn in used)
    if ":rule/StepFunctionsGetEventsFor" in resource:  # the managed rule of a .sync integration
        return any(".sync" in arn for arn in used)
    if actions == ["iam:PassRole"]:  # task and execution roles of a task definition the machine runs
        return item["Condition"] == {
            "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
        } and resource in {_arn_of(stack, role) for role in of_type(stack, "aws:iam/role:Role")}
    return False


@pytest.mark.parametrize("name", ["alone", "serverless", "containers"])
def test_machine_role_is_derived_least_privilege(name: str, evaluation: Callable[..., Evaluation]) -> None:
    stack = evaluation(name)
    trust = policy(named(stack, "stepfunctions-role").inputs["assumeRolePolicy"])
    (statement,) = statements(trust)
    assert statement["Principal"] == {"Service": "states.amazonaws.com"}
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}

    document = _role_policy(stack, "stepfunctions-role-policy")
    assert wildcard_actions(document) == []
    used = _used_arns(stack)
    granted = {a for s in statements(document) for a in as_list(s["Action"])}
    assert set(STATES_LOG_DELIVERY_ACTIONS) <= granted and "xray:PutTraceSegments" in granted
    for item in statements(document):
        for resource in as_list(item["Resource"]):
            if resource == "*":
                assert set(as_list(item["Action"])) <= set(ACTIONS_REQUIRING_STAR), item
                continue
            assert _used_by_the_machine(resource, item, used, stack), f"{resource} is not used by the machine"


def test_schedule_role_may_only_start_this_machine_and_dead_letter(alone: Evaluation) -> None:
    trust = statements(policy(named(alone, "stepfunctions-schedule-role").inputs["assumeRolePolicy"]))[0]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    document = _role_policy(alone, "stepfunctions-schedule-role-policy")
    assert wildcard_actions(document) == []
    by_sid = {s["Sid"]: s for s in statements(document)}
    machine_arn = _arn_of(alone, machine(alone))
    (queue,) = ours(alone, "aws:sqs/queue:Queue")
    assert by_sid["StartExecution"]["Action"] == ["states:StartExecution"]
    assert by_sid["StartExecution"]["Resource"] == [machine_arn]
    assert by_sid["DeadLetter"]["Resource"] == [_arn_of(alone, queue)]


# ---------------------------------------------------------------------------------------------------------------------
# Row 55: the schedule retries and dead-letters; row 54: alarms notify the alerts topic
# ---------------------------------------------------------------------------------------------------------------------


def test_schedule_starts_the_machine_with_retries_and_a_dead_letter_queue(alone: Evaluation) -> None:
    (schedule,) = ours(alone, "aws:scheduler/schedule:Schedule")
    (queue,) = ours(alone, "aws:sqs/queue:Queue")
    target = schedule.inputs["target"]
    assert schedule.inputs["scheduleExpression"] == "cron(0 2 * * ? *)"
    assert target["arn"] == _arn_of(alone, machine(alone))
    assert target["retryPolicy"]["maximumRetryAttempts"] >= 1
    assert target["retryPolicy"]["maximumEventAgeInSeconds"] > 0
    assert target["deadLetterConfig"]["arn"] == _arn_of(alone, queue)
    assert json.loads(target["input"])["run_date"] == "<aws.scheduler.scheduled-time>" == SCHEDULED_INPUT["run_date"]
    assert queue.inputs["kmsMasterKeyId"].endswith(_key_id(alone))
    assert queue.inputs["messageRetentionSeconds"] == 1_209_600
    deny = statements(_role_policy(alone, "stepfunctions-schedule-dlq-policy"))[0]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_dead_letter_queue_is_protected_in_prod(evaluation: Callable[..., Evaluation]) -> None:
    (queue,) = ours(evaluation("alone-prod"), "aws:sqs/queue:Queue")
    assert queue.protect and queue.retain_on_delete
    (dev_queue,) = ours(evaluation("alone"), "aws:sqs/queue:Queue")
    assert not dev_queue.protect


def test_alarms_cover_executions_and_the_dlq_and_notify_the_alerts_topic(alone: Evaluation) -> None:
    (topic,) = of_type(alone, "aws:sns/topic:Topic")
    topic_arn = _arn_of(alone, topic)
    alarms = ours(alone, "aws:cloudwatch/metricAlarm:MetricAlarm")
    machine_arn = _arn_of(alone, machine(alone))
    states_alarms = {a.inputs["metricName"]: a for a in alarms if a.inputs["namespace"] == "AWS/States"}
    assert set(states_alarms) == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionThrottled"}
    for alarm in states_alarms.values():
        assert alarm.inputs["dimensions"] == {"StateMachineArn": machine_arn}
    (dlq_alarm,) = [a for a in alarms if a.inputs["namespace"] == "AWS/SQS"]
    assert dlq_alarm.inputs["threshold"] == 0 and dlq_alarm.inputs["comparisonOperator"] == "GreaterThanThreshold"
    for alarm in alarms:
        assert alarm.inputs["alarmActions"] == [topic_arn], alarm.name
    dashboard = json.loads(of_type(alone, "aws:cloudwatch/dashboard:Dashboard")[0].inputs["dashboardBody"])
    titles = [w["properties"].get("title", "") for w in dashboard["widgets"]]
    assert "Step Functions executions" in titles


# ---------------------------------------------------------------------------------------------------------------------
# Preview and update register the same resources; outputs
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alone", "serverless", "containers"])
def test_preview_and_update_register_the_same_resources(name: str, evaluation: Callable[..., Evaluation]) -> None:
    def census(stack: Evaluation) -> list[tuple[str, str, bool]]:
        return sorted((r.type, r.name, r.protect) for r in stack.registrations)

    update, preview = evaluation(name), evaluation(name, preview=True)
    assert census(preview) == census(update)
    assert not isinstance(machine(preview).inputs.get("definition"), str), "ARNs are unknown in a preview"


# ---------------------------------------------------------------------------------------------------------------------
# Other engines
# ---------------------------------------------------------------------------------------------------------------------


def test_serverless_stages_invoke_the_serverless_functions(evaluation: Callable[..., Evaluation]) -> None:
    stack = evaluation("serverless")
    own = function_arns(stack)
    assert sorted(n.split("-")[3] for n in own) == ["load", "validate"], "own Lambdas only for own stages"
    states = definition(stack)["States"]
    extract = states["ExtractSources"]["Branches"][0]["States"]["Extract orders"]["Parameters"]["FunctionName"]
    transform = states["TransformPartitions"]["ItemProcessor"]["States"]["Transform partition"]
    serverless_functions = {
        _arn_of(stack, r) for r in of_type(stack, "aws:lambda/function:Function") if not r.name.startswith(PREFIX)
    }
    assert extract in serverless_functions and transform["Parameters"]["FunctionName"] in serverless_functions
    assert states["Validate"]["Parameters"]["FunctionName"] in own.values()
    assert states["Load"]["Parameters"]["FunctionName"] in own.values()


def test_container_transform_runs_the_containers_task_definition(evaluation: Callable[..., Evaluation]) -> None:
    stack = evaluation("containers")
    transform = definition(stack)["States"]["TransformPartitions"]["ItemProcessor"]["States"]["Transform partition"]
    assert transform["Resource"] == "arn:aws:states:::ecs:runTask.sync"
    task_definitions = {_arn_of(stack, r) for r in of_type(stack, "aws:ecs/taskDefinition:TaskDefinition")}
    assert transform["Parameters"]["TaskDefinition"] in task_definitions
    assert transform["Parameters"]["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
    assert "-transform-" not in " ".join(function_arns(stack))
    passed = [s for s in statements(_role_policy(stack, "stepfunctions-role-policy")) if "iam:PassRole" in s["Action"]]
    assert passed and passed[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}


# ---------------------------------------------------------------------------------------------------------------------
# Config and build-time errors
# ---------------------------------------------------------------------------------------------------------------------


def test_an_unselected_engine_is_a_config_error_naming_both(tmp_path: Path) -> None:
    config = _config("dev", ["stepfunctions"], engines={"transform": "serverless"})
    with pytest.raises(ProgramError) as error:
        evaluate_config(tmp_path, config)
    message = str(error.value)
    assert "etl-platform:stepfunctions.engines.transform: engine 'serverless' is not selected" in message
    assert "select 'serverless' too or choose one of: stepfunctions" in message


def test_express_cannot_outlast_five_minutes(tmp_path: Path) -> None:
    with pytest.raises(ProgramError, match=r"timeoutSeconds 3600 exceeds the 300 seconds an EXPRESS execution"):
        evaluate_config(tmp_path, _config("dev", ["stepfunctions"], type="EXPRESS"))


def test_express_is_selectable(tmp_path: Path) -> None:
    stack = evaluate_config(tmp_path, _config("dev", ["stepfunctions"], type="EXPRESS", timeoutSeconds=300))
    assert machine(stack).inputs["type"] == "EXPRESS"
    assert definition(stack)["TimeoutSeconds"] == 300


def test_express_cannot_wait_for_a_container_stage() -> None:
    with pytest.raises(ValueError, match=r"type EXPRESS cannot wait for a job \(transform on containers\)"):
        StepFunctionsSettings.model_validate(
            {"type": "EXPRESS", "timeoutSeconds": 300, "engines": {"transform": "containers"}}
        )


def test_a_missing_engine_at_build_time_names_both_architectures() -> None:
    by_stage = StepFunctionsSettings.model_validate({"engines": {"load": "serverless"}}).engines.by_stage()
    with pytest.raises(pulumi.RunError) as error:
        resolve_engines(by_stage, {})
    message = str(error.value)
    assert "stage 'load' runs on 'serverless'" in message and "'stepfunctions' is built after 'serverless'" in message

    partial = LambdaEngineRef(function_arns={Stage.EXTRACT: pulumi.Output.from_input("arn")})
    with pytest.raises(pulumi.RunError, match="'serverless' has no load stage"):
        resolve_engines(by_stage, {ArchitectureName.SERVERLESS: partial})


# ---------------------------------------------------------------------------------------------------------------------
# The definition builder for every engine mix, without Pulumi
# ---------------------------------------------------------------------------------------------------------------------

FUNCTION = "arn:aws:lambda:eu-west-1:123456789012:function:{}"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:alerts"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234"
ECS = workflows.EcsInvoker(
    cluster_arn="arn:aws:ecs:eu-west-1:123456789012:cluster/etl",
    task_definition_arn="arn:aws:ecs:eu-west-1:123456789012:task-definition/etl-validate:4",
    container_name="etl",
    subnet_ids=("subnet-1", "subnet-2"),
    security_group_ids=("sg-1",),
    pass_role_arns=("arn:aws:iam::123456789012:role/task", "arn:aws:iam::123456789012:role/exec"),
    capacity_provider="FARGATE_SPOT",
)


def _built(validate: workflows.Invoker) -> Any:
    invokers: dict[Stage, workflows.Invoker] = {
        stage: workflows.LambdaInvoker(FUNCTION.format(stage.value)) for stage in Stage
    }
    invokers[Stage.VALIDATE] = validate
    return build_definition(
        StepFunctionsSettings(),
        invokers=invokers,
        alerts_topic_arn=TOPIC,
        validation_result=workflows.ValidationResultLocation(
            bucket="artifacts", prefix=VALIDATION_PREFIX, kms_key_arn=KEY
        ),
        pipeline_name="test",
    )


@pytest.mark.parametrize("validate", [workflows.LambdaInvoker(FUNCTION.format("validate")), ECS], ids=["lambda", "ecs"])
def test_every_engine_mix_renders_valid_asl_and_scoped_permissions(validate: workflows.Invoker, tmp_path: Path) -> None:
    built = _built(validate)
    result = statelint(built.to_json(), tmp_path)
    assert result.returncode == 0, result.stdout
    document = role_policy(built, KEY)
    assert wildcard_actions(document) == []
    states = built.to_dict()["States"]
    if isinstance(validate, workflows.EcsInvoker):
        # An ECS validate writes its result to S3; the gate reads it back before deciding.
        assert states["Validate"]["Next"] == "ReadValidationResult"
        reads = [s for s in statements(document) if s["Action"] == ["s3:GetObject"]]
        assert reads == [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::artifacts/{VALIDATION_PREFIX}*"],
            }
        ]
    else:
        assert "ReadValidationResult" not in states


def test_validation_results_go_where_the_container_tasks_may_write() -> None:
    _require("containers")
    from components.architectures import containers, stepfunctions

    assert stepfunctions.VALIDATION_PREFIX == containers.VALIDATION_PREFIX


def test_fake_refs_satisfy_the_engine_contract() -> None:
    # The refs the serverless/containers architectures expose are what resolve_engines accepts.
    by_stage = StepFunctionsSettings.model_validate(
        {"engines": {"extract": "serverless", "transform": "containers"}}
    ).engines.by_stage()
    output = pulumi.Output.from_input
    lambda_ref = LambdaEngineRef(function_arns={Stage.EXTRACT: output(FUNCTION.format("x"))})
    ecs_ref = EcsEngineRef(
        cluster_arn=output(ECS.cluster_arn),
        task_definition_arns={Stage.TRANSFORM: output(ECS.task_definition_arn)},
        container_name="etl",
        subnet_ids=[],
        security_group_ids=[],
        pass_role_arns=[],
        capacity_provider="FARGATE",
    )
    resolved = resolve_engines(
        by_stage, {ArchitectureName.SERVERLESS: lambda_ref, ArchitectureName.CONTAINERS: ecs_ref}
    )
    assert resolved == {Stage.EXTRACT: lambda_ref, Stage.TRANSFORM: ecs_ref, Stage.VALIDATE: None, Stage.LOAD: None}


@pytest.mark.parametrize(
    "execution_input", [{"run_date": "2024-03-05T02:00:00Z"}, {"run_date": "2024-03-05"}], ids=["scheduled", "manual"]
)
def test_run_date_states_execute_on_moto(execution_input: dict[str, str]) -> None:
    # The start-time branch is not executed here: moto passes $$.Execution.StartTime as a datetime, not AWS's string.
    import boto3
    from moto import mock_aws

    from components import asl
    from components.architectures.stepfunctions import with_run_date

    machine_definition = with_run_date(asl.StateMachine((asl.Pass(name="Work", end=True),))).to_json()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):  # type: ignore[arg-type]
        client = boto3.client("stepfunctions", region_name="eu-west-1")
        arn = client.create_state_machine(
            name="run-date", definition=machine_definition, roleArn="arn:aws:iam::123456789012:role/states"
        )["stateMachineArn"]
        execution = client.start_execution(stateMachineArn=arn, input=json.dumps(execution_input))["executionArn"]
        for _ in range(100):
            described = client.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                break
            time.sleep(0.05)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert json.loads(described["output"]) == {"run_date": "2024-03-05"}
