"""The containers architecture, evaluated under mocks: the controls of CONTROLS.md rows 45-55 on recorded inputs,
preview/update parity, the content-hash image tag, build-on-preview, the rendered pipeline definition (statelint,
Retry/Catch on every Task) and least-privilege roles."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from components import images
from components.architectures import containers
from components.architectures.containers import (
    Containers,
    ImageSource,
    LakeArns,
    PipelineRefs,
    image_tag,
    pipeline_definition,
    state_machine_policy,
    task_role_policy,
)
from components.policies import wildcard_actions
from components.settings import ContainersSettings, Stage
from components.workflows import EcsInvoker
from etlctl.offline import Evaluation
from tests.conftest import ROOT, evaluate_config
from tests.unit.resources import as_list, named, of_type, policy, statements

COMPONENT = "etl-platform-containers"
# Pulumi's marker of a secret value in serialized inputs.
SECRET_SIG = "4dabf18193072939515e22adb298388d"
STATELINT = ROOT / ".venv" / "bin" / "statelint"
PROD_SETTINGS = {
    "buildOnPreview": True,
    "platform": "linux/amd64",
    "stages": {"transform": {"cpu": 1024, "memory": 4096}},
    "keepImages": 5,
}


def _config(environment: str, settings: dict[str, Any] | None = None) -> dict[str, object]:
    config: dict[str, object] = {
        "aws:region": "eu-west-1",
        "etl-platform:environment": environment,
        "etl-platform:architectures": ["containers"],
    }
    if settings is not None:
        config["etl-platform:containers"] = settings
    return config


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Evaluation:
    return evaluate_config(tmp_path_factory.mktemp("dev"), _config("dev"))


@pytest.fixture(scope="module")
def dev_preview(tmp_path_factory: pytest.TempPathFactory) -> Evaluation:
    return evaluate_config(tmp_path_factory.mktemp("dev-preview"), _config("dev"), preview=True)


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Evaluation:
    return evaluate_config(tmp_path_factory.mktemp("prod"), _config("prod", PROD_SETTINGS), stack="prod")


@pytest.fixture(scope="module", params=["dev", "prod"])
def stack(request: pytest.FixtureRequest) -> Evaluation:
    evaluation: Evaluation = request.getfixturevalue(request.param)
    return evaluation


def ours(evaluation: Evaluation, token: str | None = None) -> list[Any]:
    """Custom resources parented by the containers component."""
    (component,) = [r for r in evaluation.registrations if r.name == COMPONENT]
    assert component.type == Containers.type_token
    return [r for r in evaluation.resources if r.parent == component.urn and (token is None or r.type == token)]


def _one(evaluation: Evaluation, token: str) -> Any:
    (found,) = ours(evaluation, token)
    return found


def _key_arn(evaluation: Evaluation) -> str:
    """The stack key's ARN, as the foundation's alerts topic received it."""
    (topic,) = of_type(evaluation, "aws:sns/topic:Topic")
    value: str = topic.inputs["kmsMasterKeyId"]
    assert value.startswith("arn:aws:kms:eu-west-1:123456789012:key/")
    return value


def _containers(task_definition: Any) -> list[dict[str, Any]]:
    parsed: list[dict[str, Any]] = json.loads(task_definition.inputs["containerDefinitions"])
    return parsed


def _definition(evaluation: Evaluation) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(_one(evaluation, "aws:sfn/stateMachine:StateMachine").inputs["definition"])
    return parsed


def _tasks(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: state for name, state in definition["States"].items() if state["Type"] == "Task"}


# ---------------------------------------------------------------------------------------------------------------------
# Program-level behaviour
# ---------------------------------------------------------------------------------------------------------------------


def test_preview_and_update_register_the_same_resources(dev: Evaluation, dev_preview: Evaluation) -> None:
    def census(evaluation: Evaluation) -> Counter[tuple[str, str, bool]]:
        return Counter((r.type, r.name, r.protect) for r in evaluation.registrations)

    assert census(dev_preview) == census(dev)
    assert len(ours(dev)) == 37


def test_dev_vpc_gets_the_interface_endpoints_fargate_pulls_through(dev: Evaluation, prod: Evaluation) -> None:
    def interface_services(evaluation: Evaluation) -> set[str]:
        return {
            r.inputs["serviceName"].removeprefix("com.amazonaws.eu-west-1.")
            for r in of_type(evaluation, "aws:ec2/vpcEndpoint:VpcEndpoint")
            if r.inputs["vpcEndpointType"] == "Interface"
        }

    assert interface_services(dev) == {"ecr.api", "ecr.dkr", "logs"}
    # prod has NAT gateways, so no interface endpoints are needed.
    assert interface_services(prod) == set()


def test_dev_defaults_to_fargate_spot_and_prod_to_fargate(dev: Evaluation, prod: Evaluation) -> None:
    for evaluation, expected in ((dev, "FARGATE_SPOT"), (prod, "FARGATE")):
        capacity = _one(evaluation, "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders").inputs
        assert capacity["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
        (strategy,) = capacity["defaultCapacityProviderStrategies"]
        assert strategy["capacityProvider"] == expected
        for task in _tasks(_definition(evaluation)).values():
            if task["Resource"].endswith("ecs:runTask.sync"):
                assert task["Parameters"]["CapacityProviderStrategy"] == [{"CapacityProvider": expected, "Weight": 1}]


def test_capacity_provider_setting_overrides_the_profile(tmp_path: Path) -> None:
    evaluation = evaluate_config(tmp_path, _config("dev", {"capacityProvider": "FARGATE"}))
    capacity = _one(evaluation, "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders").inputs
    assert capacity["defaultCapacityProviderStrategies"][0]["capacityProvider"] == "FARGATE"


# ---------------------------------------------------------------------------------------------------------------------
# ECR (rows 49-50)
# ---------------------------------------------------------------------------------------------------------------------


def test_repository_scans_is_immutable_and_kms_encrypted(stack: Evaluation) -> None:
    repository = _one(stack, "aws:ecr/repository:Repository")
    assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
    assert repository.inputs["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": _key_arn(stack)}]


def test_repository_is_force_deletable_only_in_dev_and_protected_in_prod(dev: Evaluation, prod: Evaluation) -> None:
    dev_repo, prod_repo = _one(dev, "aws:ecr/repository:Repository"), _one(prod, "aws:ecr/repository:Repository")
    assert dev_repo.inputs["forceDelete"] is True and not dev_repo.protect
    assert prod_repo.inputs["forceDelete"] is False
    assert prod_repo.protect and prod_repo.retain_on_delete


def test_lifecycle_policy_expires_untagged_and_keeps_the_configured_count(stack: Evaluation) -> None:
    repository = _one(stack, "aws:ecr/repository:Repository")
    lifecycle = _one(stack, "aws:ecr/lifecyclePolicy:LifecyclePolicy")
    assert lifecycle.inputs["repository"] == repository.inputs["name"]
    rules = {rule["selection"]["tagStatus"]: rule for rule in json.loads(lifecycle.inputs["policy"])["rules"]}
    assert rules["untagged"]["selection"]["countNumber"] == 1
    assert rules["untagged"]["selection"]["countUnit"] == "days"
    keep = 5 if stack.config.stack == "prod" else ContainersSettings().keep_images
    assert rules["tagged"]["selection"] == {
        "tagStatus": "tagged", "tagPatternList": ["*"], "countType": "imageCountMoreThan", "countNumber": keep,
    }  # fmt: skip


def test_no_repository_policy_grants_everyone(stack: Evaluation) -> None:
    for repository_policy in of_type(stack, "aws:ecr/repositoryPolicy:RepositoryPolicy"):
        for statement in statements(policy(repository_policy.inputs["policy"])):
            assert statement.get("Principal") not in ("*", {"AWS": "*"})


# ---------------------------------------------------------------------------------------------------------------------
# The image: content tag, digest pin, build on preview
# ---------------------------------------------------------------------------------------------------------------------


def test_image_is_tagged_by_content_and_pushed_with_a_fresh_token(dev: Evaluation) -> None:
    image = _one(dev, "docker:index/image:Image").inputs
    repository = _one(dev, "aws:ecr/repository:Repository")
    settings = ContainersSettings()
    url = f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/{repository.inputs['name']}"
    # The tag's value is checked against image_tag() on a private copy of the context (below): the checkout's
    # etl_jobs/ may change while the suite runs, which would move the tag between evaluation and assertion.
    tag = image["imageName"].removeprefix(f"{url}:")
    assert len(tag) == images.TAG_LENGTH and int(tag, 16) >= 0
    assert image["skipPush"] is False
    assert image["build"]["args"] == {"BASE_IMAGE": settings.base_image}
    assert image["build"]["platform"] == "linux/arm64"
    # Relative to the project directory, so the input is the same on every checkout and shows no diff.
    assert image["build"]["context"] == "."
    assert image["build"]["dockerfile"] == "containers/etl/Dockerfile"
    # From aws:ecr/getAuthorizationToken on this run (the mock's token), never a cached value; kept secret in state.
    registry = image["registry"]
    assert registry.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270", "registry credentials must be secret"
    assert registry["value"] == {"server": url, "username": "AWS", "password": "offline-preview-token"}


def test_build_on_preview_defaults_to_false_and_follows_the_setting(dev: Evaluation, prod: Evaluation) -> None:
    assert _one(dev, "docker:index/image:Image").inputs["buildOnPreview"] is False
    assert _one(prod, "docker:index/image:Image").inputs["buildOnPreview"] is True


def test_task_definitions_pin_the_pushed_digest(stack: Evaluation) -> None:
    image = _one(stack, "docker:index/image:Image")
    repository_url = image.inputs["imageName"].rsplit(":", 1)[0]
    definitions = ours(stack, "aws:ecs/taskDefinition:TaskDefinition")
    assert len(definitions) == 4
    for definition in definitions:
        (container,) = _containers(definition)
        assert container["image"].startswith(f"{repository_url}@sha256:")
        assert ":" + image.inputs["imageName"].rsplit(":", 1)[1] not in container["image"], "pinned by digest, not tag"


# ---------------------------------------------------------------------------------------------------------------------
# The image tag, at the component level on a temporary copy of the build context
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def context_copy(tmp_path: Path) -> ImageSource:
    root = tmp_path / "context"
    for relative in images.context_files(images.REPO_ROOT, images.ETL_DOCKERFILE):
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(images.REPO_ROOT / relative, target)
    etl_dir = root / "containers" / "etl"
    etl_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(images.ETL_DOCKERFILE, etl_dir / "Dockerfile")
    shutil.copy2(images.ETL_IMAGE_DIR / "Dockerfile.dockerignore", etl_dir / "Dockerfile.dockerignore")
    return ImageSource("etl", root, etl_dir / "Dockerfile")


def test_tag_is_stable_for_an_untouched_context(context_copy: ImageSource) -> None:
    settings = ContainersSettings()
    assert image_tag(context_copy, settings) == image_tag(context_copy, settings)
    # The copy has the same content as the checkout, so the same tag: no rebuild, no push, no diff.
    assert image_tag(context_copy, settings) == image_tag(containers.ETL_IMAGE, settings)


def test_tag_changes_when_a_context_file_changes(context_copy: ImageSource) -> None:
    settings = ContainersSettings()
    before = image_tag(context_copy, settings)
    with (context_copy.context_dir / "etl_jobs" / "zones.py").open("a") as handle:
        handle.write("\n# changed\n")
    assert image_tag(context_copy, settings) != before


def test_tag_ignores_files_the_dockerignore_excludes(context_copy: ImageSource) -> None:
    settings = ContainersSettings()
    before = image_tag(context_copy, settings)
    (context_copy.context_dir / "README.md").write_text("not in the image\n")
    cache = context_copy.context_dir / "etl_jobs" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "zones.cpython-312.pyc").write_bytes(b"\x00bytecode")
    assert image_tag(context_copy, settings) == before


def test_tag_changes_with_build_args_and_platform(context_copy: ImageSource) -> None:
    base = ContainersSettings()
    tags = {
        image_tag(context_copy, base),
        image_tag(context_copy, ContainersSettings(base_image="registry.example/python:3.12")),
        image_tag(context_copy, ContainersSettings(platform="linux/amd64")),
    }
    assert len(tags) == 3


def test_the_context_pulumi_docker_sends_is_the_one_the_tag_covers() -> None:
    # pulumi-docker reads only <context>/.dockerignore: it must be the image's own ignore file.
    root_ignore = images.REPO_ROOT / ".dockerignore"
    image_ignore = images.ETL_IMAGE_DIR / "Dockerfile.dockerignore"
    assert root_ignore.read_text() == image_ignore.read_text()
    sent = images.context_files(images.REPO_ROOT, images.ETL_DOCKERFILE)
    assert "etl_jobs/requirements.txt" in sent and all(name.startswith("etl_jobs/") for name in sent)
    assert not any(name.startswith((".venv/", ".git/", "tests/", "build/")) for name in sent)


def test_component_tags_the_image_from_its_context(
    context_copy: ImageSource, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Containers, "images", (context_copy,))

    def image_name(run: str) -> str:
        evaluation = evaluate_config(tmp_path / run, _config("dev"))
        name: str = _one(evaluation, "docker:index/image:Image").inputs["imageName"]
        return name

    for run in ("first", "second", "third"):
        (tmp_path / run).mkdir()
    first = image_name("first")
    (context_copy.context_dir / "notes.txt").write_text("excluded by the ignore file\n")
    assert image_name("second") == first
    (context_copy.context_dir / "etl_jobs" / "new_module.py").write_text("VALUE = 1\n")
    third = image_name("third")
    assert third != first
    assert third.endswith(":" + image_tag(context_copy, ContainersSettings()))


# ---------------------------------------------------------------------------------------------------------------------
# ECS cluster and task definitions (rows 45-48)
# ---------------------------------------------------------------------------------------------------------------------


def test_cluster_has_container_insights_and_encrypted_exec_logging(stack: Evaluation) -> None:
    cluster = _one(stack, "aws:ecs/cluster:Cluster").inputs
    assert {"name": "containerInsights", "value": "enabled"} in cluster["settings"]
    execute = cluster["configuration"]["executeCommandConfiguration"]
    assert execute["kmsKeyId"] == _key_arn(stack)
    assert execute["logging"] == "OVERRIDE"
    assert execute["logConfiguration"]["cloudWatchEncryptionEnabled"] is True
    exec_logs = named(stack, f"{COMPONENT}-exec-logs")
    assert execute["logConfiguration"]["cloudWatchLogGroupName"].startswith(exec_logs.name)
    assert exec_logs.inputs["kmsKeyId"] == _key_arn(stack)


def test_task_definitions_log_with_awslogs_and_carry_no_secrets(stack: Evaluation) -> None:
    task_logs = named(stack, f"{COMPONENT}-tasks-logs")
    for definition in ours(stack, "aws:ecs/taskDefinition:TaskDefinition"):
        (container,) = _containers(definition)
        log = container["logConfiguration"]
        assert log["logDriver"] == "awslogs"
        assert log["options"]["awslogs-group"].startswith(task_logs.name)
        assert log["options"]["awslogs-region"] == "eu-west-1"
        names = {variable["name"] for variable in container["environment"]}
        assert names == {"ETL_RAW_URI", "ETL_STAGED_URI", "ETL_CURATED_URI", "ETL_QUARANTINE_URI"}
        assert all(variable["value"].startswith("s3://") for variable in container["environment"])
        assert "secrets" not in container


def test_task_definitions_are_hardened_fargate_tasks(stack: Evaluation) -> None:
    for definition in ours(stack, "aws:ecs/taskDefinition:TaskDefinition"):
        inputs = definition.inputs
        (container,) = _containers(definition)
        stage = container["command"][0]
        assert container["command"] == [stage, "--json"] and stage in {s.value for s in Stage}
        assert inputs["networkMode"] == "awsvpc"
        assert inputs["requiresCompatibilities"] == ["FARGATE"]
        assert "pidMode" not in inputs and "ipcMode" not in inputs
        assert container["privileged"] is False
        assert container["readonlyRootFilesystem"] is True
        assert container["user"] == "10001:10001" and not container["user"].startswith("0")
        assert inputs["executionRoleArn"] != inputs["taskRoleArn"]
        assert container["mountPoints"] == [{"sourceVolume": "scratch", "containerPath": "/tmp", "readOnly": False}]
        assert inputs["volumes"] == [{"name": "scratch"}]


def test_task_sizes_and_architecture_follow_the_settings(dev: Evaluation, prod: Evaluation) -> None:
    def sizes(evaluation: Evaluation) -> dict[str, tuple[str, str, str]]:
        return {
            _containers(d)[0]["command"][0]: (
                d.inputs["cpu"],
                d.inputs["memory"],
                d.inputs["runtimePlatform"]["cpuArchitecture"],
            )
            for d in ours(evaluation, "aws:ecs/taskDefinition:TaskDefinition")
        }

    assert sizes(dev) == {stage.value: ("512", "1024", "ARM64") for stage in Stage}
    assert sizes(prod)["transform"] == ("1024", "4096", "X86_64")
    assert sizes(prod)["load"] == ("512", "1024", "X86_64")
    assert _one(prod, "docker:index/image:Image").inputs["build"]["platform"] == "linux/amd64"


def test_tasks_run_privately_behind_an_egress_only_security_group(stack: Evaluation) -> None:
    group = _one(stack, "aws:ec2/securityGroup:SecurityGroup")
    assert group.inputs["description"]
    assert not ours(stack, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert "ingress" not in group.inputs or group.inputs["ingress"] == []
    (egress,) = ours(stack, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    assert (egress.inputs["ipProtocol"], egress.inputs["fromPort"], egress.inputs["toPort"]) == ("tcp", 443, 443)
    assert egress.inputs["description"]
    for task in _tasks(_definition(stack)).values():
        if task["Resource"].endswith("ecs:runTask.sync"):
            network = task["Parameters"]["NetworkConfiguration"]["AwsvpcConfiguration"]
            assert network["AssignPublicIp"] == "DISABLED"
            assert len(network["Subnets"]) == 2 and all(s.startswith("subnet-") for s in network["Subnets"])
            assert len(network["SecurityGroups"]) == 1
            assert task["Parameters"]["PlatformVersion"] == "LATEST"


# ---------------------------------------------------------------------------------------------------------------------
# The state machine (rows 51-52)
# ---------------------------------------------------------------------------------------------------------------------


def test_state_machine_logs_everything_and_traces(stack: Evaluation) -> None:
    machine = _one(stack, "aws:sfn/stateMachine:StateMachine").inputs
    assert machine["type"] == "STANDARD"
    logging = machine["loggingConfiguration"]
    assert logging["level"] == "ALL" and logging["includeExecutionData"] is True
    logs = named(stack, f"{COMPONENT}-pipeline-logs")
    assert logging["logDestination"].startswith(f"arn:aws:logs:eu-west-1:123456789012:log-group:{logs.name}")
    assert logging["logDestination"].endswith(":*")
    assert machine["tracingConfiguration"] == {"enabled": True}


def test_execution_data_is_encrypted_with_the_stack_key_the_role_may_use(stack: Evaluation) -> None:
    (key,) = of_type(stack, "aws:kms/key:Key")
    encryption = _one(stack, "aws:sfn/stateMachine:StateMachine").inputs["encryptionConfiguration"]
    assert encryption["type"] == "CUSTOMER_MANAGED_KMS_KEY"
    assert encryption["kmsKeyId"].startswith("arn:aws:kms:eu-west-1:123456789012:key/")
    grants = _grants(_role_policies(stack)["pipeline-policy"])
    assert encryption["kmsKeyId"] in grants["kms:Decrypt"] and encryption["kmsKeyId"] in grants["kms:GenerateDataKey"]
    assert key.name.endswith("encryption-key")


def test_definition_passes_statelint(stack: Evaluation, tmp_path: Path) -> None:
    path = tmp_path / "definition.json"
    path.write_text(_one(stack, "aws:sfn/stateMachine:StateMachine").inputs["definition"])
    result = subprocess.run([str(STATELINT), str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_statelint_rejects_a_broken_definition(tmp_path: Path) -> None:
    # Guards the test above: the console script really checks.
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}))
    assert subprocess.run([str(STATELINT), str(path)], capture_output=True, check=False).returncode != 0


def test_every_task_retries_with_backoff_and_catches_to_the_alert(stack: Evaluation) -> None:
    definition = _definition(stack)
    tasks = _tasks(definition)
    run_tasks = [name for name, task in tasks.items() if task["Resource"].endswith(":states:::ecs:runTask.sync")]
    assert sorted(run_tasks) == ["Extract", "Load", "Transform", "Validate"]
    for name, task in tasks.items():
        assert task["Retry"], f"{name} has no Retry"
        for retrier in task["Retry"]:
            assert retrier["BackoffRate"] == 2.0 and retrier["JitterStrategy"] == "FULL" and retrier["MaxDelaySeconds"]
        assert task["TimeoutSeconds"] > 0
        (catch,) = task["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"]
        assert catch["Next"] in ("NotifyFailure", "Failed")
    alert = tasks["NotifyFailure"]
    assert alert["Resource"].endswith(":states:::sns:publish")
    (topic,) = of_type(stack, "aws:sns/topic:Topic")
    assert alert["Parameters"]["TopicArn"].split(":")[-1].startswith(topic.name)


def test_runs_start_from_the_schedule_date_or_a_given_run_date(dev: Evaluation) -> None:
    definition = _definition(dev)
    assert definition["StartAt"] == "RunDate"
    choice = definition["States"]["RunDate"]
    assert choice["Choices"] == [{"Variable": "$.run_date", "IsPresent": True, "Next": "Extract"}]
    derive = definition["States"][choice["Default"]]
    assert derive["Parameters"]["run_date.$"] == "States.ArrayGetItem(States.StringSplit($.scheduled_time, 'T'), 0)"
    schedule = _one(dev, "aws:scheduler/schedule:Schedule").inputs
    assert json.loads(schedule["target"]["input"])["scheduled_time"] == "<aws.scheduler.scheduled-time>"


# ---------------------------------------------------------------------------------------------------------------------
# Logs, alarms, events, schedule, DLQ (rows 53-55)
# ---------------------------------------------------------------------------------------------------------------------


def test_log_groups_have_retention_and_the_stack_key(stack: Evaluation) -> None:
    groups = ours(stack, "aws:cloudwatch/logGroup:LogGroup")
    assert len(groups) == 3
    for group in groups:
        assert group.inputs["retentionInDays"] >= (90 if stack.config.stack == "prod" else 14)
        assert group.inputs["kmsKeyId"] == _key_arn(stack)


def test_alarms_notify_the_alerts_topic(stack: Evaluation) -> None:
    (topic,) = of_type(stack, "aws:sns/topic:Topic")
    alarms = {
        alarm.inputs["metricName"]: alarm.inputs for alarm in ours(stack, "aws:cloudwatch/metricAlarm:MetricAlarm")
    }
    assert set(alarms) == {"ExecutionsFailed", "ExecutionsTimedOut", "ApproximateNumberOfMessagesVisible"}
    machine_arn = alarms["ExecutionsFailed"]["dimensions"]["StateMachineArn"]
    assert machine_arn.startswith("arn:aws:states:eu-west-1:123456789012:stateMachine:")
    assert alarms["ExecutionsTimedOut"]["dimensions"]["StateMachineArn"] == machine_arn
    dlq = _one(stack, "aws:sqs/queue:Queue")
    assert alarms["ApproximateNumberOfMessagesVisible"]["dimensions"]["QueueName"].startswith(dlq.name)
    for alarm in alarms.values():
        assert alarm["threshold"] == 0 and alarm["comparisonOperator"] == "GreaterThanThreshold"
        (action,) = alarm["alarmActions"]
        assert action.split(":")[-1].startswith(topic.name)


def test_a_failed_task_alerts_through_eventbridge_with_retries_and_a_dlq(stack: Evaluation) -> None:
    rule = _one(stack, "aws:cloudwatch/eventRule:EventRule")
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["source"] == ["aws.ecs"] and pattern["detail-type"] == ["ECS Task State Change"]
    assert pattern["detail"]["lastStatus"] == ["STOPPED"]
    assert pattern["detail"]["containers"] == {"exitCode": [{"anything-but": 0}]}
    (cluster_arn,) = pattern["detail"]["clusterArn"]
    assert cluster_arn.startswith("arn:aws:ecs:eu-west-1:123456789012:cluster/etl-platform-containers-cluster")
    target = _one(stack, "aws:cloudwatch/eventTarget:EventTarget").inputs
    (topic,) = of_type(stack, "aws:sns/topic:Topic")
    assert target["arn"].split(":")[-1].startswith(topic.name)
    dlq = _one(stack, "aws:sqs/queue:Queue")
    assert target["deadLetterConfig"]["arn"].endswith(":" + dlq.name) or dlq.name in target["deadLetterConfig"]["arn"]
    assert target["retryPolicy"]["maximumRetryAttempts"] >= 1
    assert target["retryPolicy"]["maximumEventAgeInSeconds"] > 0


def test_schedule_starts_the_machine_with_retries_and_a_dlq(stack: Evaluation) -> None:
    schedule = _one(stack, "aws:scheduler/schedule:Schedule").inputs
    assert schedule["scheduleExpression"] == ContainersSettings().schedule
    target = schedule["target"]
    assert target["arn"].startswith("arn:aws:states:eu-west-1:123456789012:stateMachine:")
    assert target["retryPolicy"]["maximumRetryAttempts"] >= 1
    assert target["deadLetterConfig"]["arn"].startswith("arn:aws:sqs:")
    assert schedule["kmsKeyArn"] == _key_arn(stack)


def test_dlq_is_encrypted_and_tls_only(stack: Evaluation) -> None:
    dlq = _one(stack, "aws:sqs/queue:Queue")
    assert dlq.inputs["kmsMasterKeyId"] == _key_arn(stack)
    document = policy(_one(stack, "aws:sqs/queuePolicy:QueuePolicy").inputs["policy"])
    deny = next(s for s in statements(document) if s["Effect"] == "Deny")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    for statement in statements(document):
        if statement["Effect"] == "Allow":
            assert statement["Principal"] == {"Service": "events.amazonaws.com"}
            assert "aws:SourceArn" in statement["Condition"]["ArnLike"]


def test_dashboard_shows_the_pipeline_cluster_and_dlq(stack: Evaluation) -> None:
    (dashboard,) = of_type(stack, "aws:cloudwatch/dashboard:Dashboard")
    titles = {w["properties"].get("title") for w in json.loads(dashboard.inputs["dashboardBody"])["widgets"]}
    assert {"Containers pipeline: executions", "Containers cluster: CPU and memory", "Containers DLQ depth"} <= titles


# ---------------------------------------------------------------------------------------------------------------------
# IAM
# ---------------------------------------------------------------------------------------------------------------------


def _role_policies(evaluation: Evaluation) -> dict[str, dict[str, Any]]:
    return {
        r.name.removeprefix(f"{COMPONENT}-"): policy(r.inputs["policy"])
        for r in ours(evaluation, "aws:iam/rolePolicy:RolePolicy")
    }


def test_no_role_policy_uses_a_wildcard_action(stack: Evaluation) -> None:
    documents = _role_policies(stack)
    assert len(documents) == 7
    for name, document in documents.items():
        assert wildcard_actions(document) == [], name
        for statement in statements(document):
            if "*" in as_list(statement["Resource"]):
                assert set(as_list(statement["Action"])) <= set(containers.policies.ACTIONS_REQUIRING_STAR), name


def test_execution_role_pulls_only_our_repository_and_writes_only_task_logs(dev: Evaluation) -> None:
    document = _role_policies(dev)["execution-policy"]
    by_sid = {s.get("Sid"): s for s in statements(document)}
    assert by_sid["PullImage"]["Resource"] == ["arn:aws:ecr:eu-west-1:123456789012:repository/etl-platform-dev/etl"]
    assert by_sid["RegistryToken"]["Action"] == ["ecr:GetAuthorizationToken"]
    (logs,) = [s for s in statements(document) if "logs:PutLogEvents" in s["Action"]]
    task_logs = named(dev, f"{COMPONENT}-tasks-logs")
    (resource,) = logs["Resource"]
    assert resource.startswith(f"arn:aws:logs:eu-west-1:123456789012:log-group:{task_logs.name}-")
    assert resource.endswith(":*")


def _grants(document: dict[str, Any]) -> dict[str, set[str]]:
    """action -> resources."""
    grants: dict[str, set[str]] = {}
    for statement in statements(document):
        for action in as_list(statement["Action"]):
            grants.setdefault(action, set()).update(as_list(statement["Resource"]))
    return grants


def test_each_stage_role_touches_only_its_zones(dev: Evaluation) -> None:
    documents = _role_policies(dev)
    buckets = {
        zone: named(dev, f"lake-{zone}").name for zone in ("raw", "staged", "curated", "quarantine", "artifacts")
    }

    def zones(grants: dict[str, set[str]], action: str) -> set[str]:
        return {zone for zone, bucket in buckets.items() for arn in grants.get(action, ()) if f":::{bucket}" in arn}

    expected = {
        "extract": ({"raw"}, {"raw"}),
        "transform": ({"raw"}, {"staged"}),
        "validate": ({"staged"}, {"quarantine", "artifacts"}),
        "load": ({"staged"}, {"curated"}),
    }
    for stage, (reads, writes) in expected.items():
        grants = _grants(documents[f"{stage}-task-policy"])
        assert zones(grants, "s3:GetObject") == reads, stage
        assert zones(grants, "s3:PutObject") == writes, stage
        assert ("s3:DeleteObject" in grants) == (stage == "load"), stage
        assert grants["kms:Decrypt"] == {_key_arn(dev)}
    extract_reads = _grants(documents["extract-task-policy"])["s3:GetObject"]
    assert all(arn.endswith("/landing/*") for arn in extract_reads)


def test_state_machine_role_is_derived_from_the_definition(dev: Evaluation) -> None:
    grants = _grants(_role_policies(dev)["pipeline-policy"])
    definitions = ours(dev, "aws:ecs/taskDefinition:TaskDefinition")
    families = {f"arn:aws:ecs:eu-west-1:123456789012:task-definition/{d.inputs['family']}:*" for d in definitions}
    assert grants["ecs:RunTask"] == families
    assert grants["iam:PassRole"] and all(":role/" in arn for arn in grants["iam:PassRole"])
    assert len(grants["iam:PassRole"]) == 5, "the execution role and the four task roles"
    assert all(arn.startswith("arn:aws:sns:") for arn in grants["sns:Publish"])
    assert all("/manifests/validation/" in arn for arn in grants["s3:GetObject"])
    assert "xray:PutTraceSegments" in grants and "logs:CreateLogDelivery" in grants


# ---------------------------------------------------------------------------------------------------------------------
# Plain functions (no Pulumi)
# ---------------------------------------------------------------------------------------------------------------------

_LAKE = LakeArns(
    raw="arn:aws:s3:::raw", staged="arn:aws:s3:::staged", curated="arn:aws:s3:::curated",
    quarantine="arn:aws:s3:::quarantine", artifacts="arn:aws:s3:::artifacts",
    key="arn:aws:kms:eu-west-1:123456789012:key/k",
)  # fmt: skip


def _refs() -> PipelineRefs:
    prefix = "arn:aws:ecs:eu-west-1:123456789012"
    return PipelineRefs(
        engine=EcsInvoker(
            cluster_arn=f"{prefix}:cluster/c",
            task_definition_arn=f"{prefix}:task-definition/x:1",
            container_name="etl",
            subnet_ids=("subnet-a", "subnet-b"),
            security_group_ids=("sg-1",),
            pass_role_arns=("arn:aws:iam::123456789012:role/exec", "arn:aws:iam::123456789012:role/task"),
            capacity_provider="FARGATE_SPOT",
        ),
        task_definition_arns={stage: f"{prefix}:task-definition/{stage.value}:1" for stage in Stage},
        alerts_topic_arn="arn:aws:sns:eu-west-1:123456789012:alerts",
        artifacts_bucket="artifacts",
        key_arn=_LAKE.key,
        partition="aws",
    )


def test_pipeline_definition_runs_each_stage_on_its_own_task_definition() -> None:
    definition = pipeline_definition(_refs(), ContainersSettings(), "p").to_dict()
    for state, stage in (
        ("Extract", "extract"),
        ("Transform", "transform"),
        ("Validate", "validate"),
        ("Load", "load"),
    ):
        assert definition["States"][state]["Parameters"]["TaskDefinition"].endswith(f"/{stage}:1")


def test_pipeline_gate_uses_the_configured_quarantine_rate() -> None:
    definition = pipeline_definition(_refs(), ContainersSettings(max_quarantine_rate=0.25), "p").to_dict()
    rules = definition["States"]["QualityGate"]["Choices"]
    assert {"Variable": "$.validate.Payload.quarantine_rate", "NumericGreaterThan": 0.25,
            "Next": "QualityGateFailed"} in rules  # fmt: skip


def test_policy_functions_have_no_wildcard_actions() -> None:
    machine = pipeline_definition(_refs(), ContainersSettings(), "p")
    assert wildcard_actions(state_machine_policy(machine, "arn:aws:kms:eu-west-1:123456789012:key/k")) == []
    for stage in Stage:
        assert wildcard_actions(task_role_policy(stage, _LAKE)) == []
