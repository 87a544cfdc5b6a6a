"""The serverless architecture under mocks (dev and prod): CONTROLS.md rows 12-17, 20, 53-55, least-privilege IAM,
preview/update parity, and the hash-stable function package."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from components import packaging
from components.architectures.serverless import ServerlessSettings
from components.policies import ACTIONS_REQUIRING_STAR, wildcard_actions
from etlctl.mocks import Registration
from etlctl.offline import Evaluation, ProgramError
from tests.support.definitions import arn_of
from tests.support.resources import as_list, named, of_type, policy, statements
from tests.support.stacks import evaluate_config

NAME = "etl-platform-serverless"
_cache: dict[tuple[str, bool], Evaluation] = {}


def serverless_stack(tmp_path_factory: pytest.TempPathFactory, environment: str, preview: bool = False) -> Evaluation:
    key = (environment, preview)
    if key not in _cache:
        config = {
            "aws:region": "eu-west-1",
            "etl-platform:environment": environment,
            "etl-platform:architectures": ["serverless"],
            # prod refuses a stack nobody is alerted in.
            "etl-platform:alertEmails": ["oncall@example.com"],
        }
        if environment == "prod":
            # Replication is on in the prod profile (raw and curated get a replica there).
            config["etl-platform:replication"] = {"region": "eu-central-1"}
        _cache[key] = evaluate_config(tmp_path_factory.mktemp(environment), config, preview=preview)
    return _cache[key]


@pytest.fixture(scope="module", params=["dev", "prod"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Evaluation:
    return serverless_stack(tmp_path_factory, request.param)


def mine(stack: Evaluation, token: str) -> list[Registration]:
    return [r for r in of_type(stack, token) if r.name.startswith(NAME)]


def test_preview_and_update_register_the_same_resources(tmp_path_factory: pytest.TempPathFactory) -> None:
    def census(evaluation: Evaluation) -> Counter[tuple[str, str, bool]]:
        return Counter((r.type, r.name, r.protect) for r in evaluation.registrations)

    update, preview = serverless_stack(tmp_path_factory, "dev"), serverless_stack(tmp_path_factory, "dev", True)
    assert census(preview) == census(update)


# --- Lambda (rows 12-15) ----------------------------------------------------------------------------------------


def test_file_drop_permission_names_the_rule_and_the_account(stack: Evaluation) -> None:
    (permission,) = mine(stack, "aws:lambda/permission:Permission")
    rule = named(stack, "serverless-file-drops")
    assert permission.inputs["principal"] == "events.amazonaws.com"
    assert permission.inputs["sourceArn"].startswith("arn:aws:events:") and rule.name in permission.inputs["sourceArn"]
    assert permission.inputs["sourceAccount"] == "123456789012"


def test_functions_are_current_traced_sized_and_encrypted(stack: Evaluation) -> None:
    functions = mine(stack, "aws:lambda/function:Function")
    assert len(functions) == 6  # extract, process and the four stages
    groups = {g.inputs["name"]: g for g in mine(stack, "aws:cloudwatch/logGroup:LogGroup")}
    for function in functions:
        inputs = function.inputs
        assert inputs["runtime"] in ("python3.12", "python3.13")
        assert inputs["tracingConfig"] == {"mode": "Active"}
        assert inputs["memorySize"] == 1024 and inputs["timeout"] == 300
        # No reservation unless the stack file asks (it would need lambdaConcurrencyQuota): -1 is "unreserved".
        assert inputs["reservedConcurrentExecutions"] == -1
        assert inputs["kmsKeyArn"].startswith("arn:aws:kms:")
        assert inputs["architectures"] == ["arm64"]
        assert inputs["layers"] and inputs["sourceCodeHash"] == packaging.function_package().source_code_hash
        variables = inputs["environment"]["variables"]
        assert {"ETL_RAW_URI", "ETL_CURATED_URI", "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"} <= set(
            variables
        )
        assert not [v for v in variables if any(word in v for word in ("SECRET", "PASSWORD", "TOKEN"))]
        group = groups[inputs["loggingConfig"]["logGroup"]]
        assert group.inputs["retentionInDays"] in (14, 90)
        assert group.inputs["kmsKeyId"].startswith("arn:aws:kms:")
        # Outside the VPC (they call regional APIs only): no attachment, so no network-interface permissions.
        assert "vpcConfig" not in inputs
    for role_policy in mine(stack, "aws:iam/rolePolicy:RolePolicy"):
        assert not [a for st in statements(policy(role_policy.inputs["policy"])) for a in st["Action"] if "ec2:" in a]


def test_the_async_extract_function_has_a_failure_destination(stack: Evaluation) -> None:
    (config,) = mine(stack, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
    extract = named(stack, "serverless-extract-function")
    assert config.inputs["functionName"] == extract.inputs.get("name", config.inputs["functionName"])
    assert 0 <= config.inputs["maximumRetryAttempts"] <= 2
    assert 60 <= config.inputs["maximumEventAgeInSeconds"] <= 21600
    destination = config.inputs["destinationConfig"]["onFailure"]["destination"]
    assert destination == named(stack, "serverless-events-dlq").inputs.get("arn", destination)
    assert destination.startswith("arn:aws:sqs:")


# --- SQS (rows 16-17, 20) ---------------------------------------------------------------------------------------


def test_work_queue_feeds_the_process_function_with_partial_batch_failures(stack: Evaluation) -> None:
    (mapping,) = mine(stack, "aws:lambda/eventSourceMapping:EventSourceMapping")
    assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping.inputs["batchSize"] == 5
    assert mapping.inputs["eventSourceArn"].startswith("arn:aws:sqs:")
    assert "serverless-process-function" in mapping.inputs["functionName"]


def test_work_queue_redrives_and_hides_messages_for_six_timeouts(stack: Evaluation) -> None:
    work = named(stack, "serverless-work")
    redrive = json.loads(work.inputs["redrivePolicy"])
    assert 3 <= redrive["maxReceiveCount"] <= 5
    assert "serverless-work-dlq" in redrive["deadLetterTargetArn"]
    assert work.inputs["visibilityTimeoutSeconds"] >= 6 * 300
    assert work.inputs["kmsMasterKeyId"].startswith("arn:aws:kms:")


def test_dead_letter_queues_keep_messages_14_days_and_are_protected_in_prod(stack: Evaluation) -> None:
    for suffix in ("serverless-work-dlq", "serverless-events-dlq"):
        queue = named(stack, suffix)
        assert queue.inputs["messageRetentionSeconds"] == 1_209_600
        assert queue.inputs["kmsMasterKeyId"].startswith("arn:aws:kms:")
        assert queue.protect is (stack.config.values["etl-platform:environment"] == "prod")


def test_queue_policies_deny_insecure_transport(stack: Evaluation) -> None:
    queue_policies = mine(stack, "aws:sqs/queuePolicy:QueuePolicy")
    assert len(queue_policies) == 3
    for queue_policy in queue_policies:
        document = statements(policy(queue_policy.inputs["policy"]))
        deny = [s for s in document if s["Effect"] == "Deny"]
        assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert all(s.get("Condition") for s in document if s["Effect"] == "Allow"), "no unconditioned Allow"


# --- logs, alarms, EventBridge (rows 53-55) ---------------------------------------------------------------------


def test_alarms_cover_errors_throttles_dlq_depth_and_message_age_and_notify_alerts(stack: Evaluation) -> None:
    alarms = mine(stack, "aws:cloudwatch/metricAlarm:MetricAlarm")
    metrics = Counter((a.inputs["namespace"], a.inputs["metricName"]) for a in alarms)
    # The event-driven extract and process always; the orchestrator's four stage functions outside dev (in dev their
    # pipeline's failed-run alarm and alert report them: Profile.diagnostic_alarms).
    functions = 2 if stack.config.environment == "dev" else 6
    assert metrics[("AWS/Lambda", "Errors")] == functions and metrics[("AWS/Lambda", "Throttles")] == functions
    assert metrics[("AWS/SQS", "ApproximateNumberOfMessagesVisible")] == 2
    assert metrics[("AWS/SQS", "ApproximateAgeOfOldestMessage")] == 1
    # The handlers' own metrics, alarmed under the `service` the emitting function's Powertools writes them with.
    services = {
        f.inputs["environment"]["variables"]["POWERTOOLS_SERVICE_NAME"]: f.inputs["handler"]
        for f in mine(stack, "aws:lambda/function:Function")
    }
    own = {
        a.inputs["metricName"]: a.inputs["dimensions"]["service"]
        for a in alarms
        if a.inputs["namespace"] == "EtlPlatform"
    }
    assert {metric: services[service] for metric, service in own.items()} == {
        "OldestWaitingLandedFileSeconds": "etl_jobs.handlers.extract.handler",
        "FilesQuarantined": "etl_jobs.handlers.process.handler",
        "QualityGateFailures": "etl_jobs.handlers.process.handler",
    }
    for alarm in alarms:
        assert [a.split(":")[2] for a in alarm.inputs["alarmActions"]] == ["sns"]


def test_schedule_and_rule_target_retry_then_dead_letter(stack: Evaluation) -> None:
    (schedule,) = mine(stack, "aws:scheduler/schedule:Schedule")
    assert schedule.inputs["flexibleTimeWindow"] == {"mode": "OFF"}
    assert schedule.inputs["scheduleExpression"] == "rate(1 hour)"
    target = schedule.inputs["target"]
    assert "serverless-extract-function" in target["arn"]
    assert target["retryPolicy"]["maximumRetryAttempts"] >= 0 and target["retryPolicy"]["maximumEventAgeInSeconds"]
    assert "serverless-events-dlq" in target["deadLetterConfig"]["arn"]
    (event_target,) = mine(stack, "aws:cloudwatch/eventTarget:EventTarget")
    assert "serverless-events-dlq" in event_target.inputs["deadLetterConfig"]["arn"]
    assert event_target.inputs["retryPolicy"]["maximumEventAgeInSeconds"] == 3600
    pattern = json.loads(named(stack, "serverless-file-drops").inputs["eventPattern"])
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["object"]["key"] == [{"prefix": "landing/"}]


def test_every_schedule_is_encrypted_with_the_stack_key(stack: Evaluation) -> None:
    """Row 55 as amended: the schedule's target input rests under the stack key, like the other schedules'."""
    key = named(stack, "encryption-key")
    schedules = of_type(stack, "aws:scheduler/schedule:Schedule")
    assert schedules
    for schedule in schedules:
        assert schedule.inputs["kmsKeyArn"] == arn_of(key), schedule.name


def test_a_reservation_is_made_on_every_function_and_counted_against_the_quota(tmp_path: Path) -> None:
    config = {
        "aws:region": "eu-west-1",
        "etl-platform:environment": "dev",
        "etl-platform:architectures": ["serverless"],
        "etl-platform:serverless": {"reservedConcurrency": 3},
        "etl-platform:lambdaConcurrencyQuota": 118,
    }
    functions = mine(evaluate_config(tmp_path, config), "aws:lambda/function:Function")
    assert [f.inputs["reservedConcurrentExecutions"] for f in functions] == [3] * len(functions)
    # The settings count what is registered: 6 x 3 = 18 fits a quota of 118 exactly, one more unit would not.
    assert ServerlessSettings(reserved_concurrency=3).concurrency_reservations() == {
        "etl-platform:serverless.reservedConcurrency": 3 * len(functions)
    }
    config["etl-platform:lambdaConcurrencyQuota"] = 117
    (tmp_path / "over").mkdir()
    with pytest.raises(ProgramError, match=r"reserve 18 concurrent executions .* a quota of 117 leaves at most 17"):
        evaluate_config(tmp_path / "over", config)


# --- IAM (rows 10-11) ---------------------------------------------------------------------------------------------


def _arn_or_allowed_star(statement: dict[str, Any]) -> list[str]:
    problems = []
    for resource in as_list(statement["Resource"]):
        if resource == "*":
            extra = [a for a in as_list(statement["Action"]) if a not in ACTIONS_REQUIRING_STAR]
            if extra:
                problems.append(f"{extra} on '*'")
        elif not resource.startswith("arn:aws:"):
            problems.append(f"{resource} is not an ARN")
    return problems


def test_role_policies_have_no_wildcard_actions_and_scoped_resources(stack: Evaluation) -> None:
    role_policies = mine(stack, "aws:iam/rolePolicy:RolePolicy")
    assert len(role_policies) == 7
    for role_policy in role_policies:
        document = policy(role_policy.inputs["policy"])
        assert wildcard_actions(document) == [], role_policy.name
        for statement in statements(document):
            assert _arn_or_allowed_star(statement) == [], f"{role_policy.name}: {statement}"


def test_roles_trust_one_service_for_this_account(stack: Evaluation) -> None:
    for role in mine(stack, "aws:iam/role:Role"):
        (trust,) = statements(policy(role.inputs["assumeRolePolicy"]))
        assert trust["Principal"]["Service"] in ("lambda.amazonaws.com", "scheduler.amazonaws.com")
        assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}


def test_the_scheduler_may_invoke_only_the_extract_function(stack: Evaluation) -> None:
    document = policy(named(stack, "serverless-scheduler-policy").inputs["policy"])
    invoke = [s for s in statements(document) if "lambda:InvokeFunction" in s["Action"]]
    assert len(invoke) == 1 and all("serverless-extract-function" in r for r in invoke[0]["Resource"])


def test_engine_exposes_the_four_stage_functions(stack: Evaluation) -> None:
    names = {r.name for r in mine(stack, "aws:lambda/function:Function")}
    assert {f"{NAME}-stage-{stage}-function" for stage in ("extract", "transform", "validate", "load")} <= names


def test_every_resource_has_a_unique_urn(stack: Evaluation) -> None:
    duplicates = [urn for urn, count in Counter(r.urn for r in stack.registrations).items() if count > 1]
    assert duplicates == []


# --- packaging --------------------------------------------------------------------------------------------------


def test_function_package_is_hash_stable_and_tracks_the_code(tmp_path: Path) -> None:
    source = tmp_path / "etl_jobs"
    shutil.copytree(packaging.JOBS_DIR, source, ignore=shutil.ignore_patterns("__pycache__"))
    first = packaging.function_package(source, tmp_path / "out")
    (source / "__pycache__").mkdir(exist_ok=True)
    (source / "__pycache__" / "noise.cpython-311.pyc").write_bytes(b"bytecode")
    second = packaging.function_package(source, tmp_path / "out")
    assert first.source_code_hash == second.source_code_hash
    assert first.path.read_bytes() == second.path.read_bytes()

    (source / "pipeline.py").write_text((source / "pipeline.py").read_text() + "\n# changed\n")
    third = packaging.function_package(source, tmp_path / "out")
    assert third.source_code_hash != first.source_code_hash
    names = __import__("zipfile").ZipFile(third.path).namelist()
    assert "etl_jobs/handlers/process.py" in names and not [n for n in names if "__pycache__" in n]


def test_layer_key_depends_on_the_pins_and_the_platform(tmp_path: Path) -> None:
    from components.settings import LambdaArchitecture

    pins = tmp_path / "requirements.txt"
    pins.write_text(packaging.LAYER_REQUIREMENTS.read_text())
    arm = packaging.layer_key(LambdaArchitecture.ARM64, pins)
    assert arm == packaging.layer_key(LambdaArchitecture.ARM64, pins)
    assert arm != packaging.layer_key(LambdaArchitecture.X86_64, pins)
    pins.write_text(pins.read_text().replace("polars==2.1.0", "polars==2.0.0"))
    assert arm != packaging.layer_key(LambdaArchitecture.ARM64, pins)
