"""The containers architecture built from its args under mocks: CONTROLS.md rows 45-50 on recorded inputs,
preview/update parity, the content-hash image tag, build-on-preview, its stage runner (the Tasks its pipeline
renders) and least-privilege roles. Its pipeline's own controls are tested in test_orchestration.py."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from components import images
from components.architectures import containers
from components.architectures.base import ArchitectureArgs
from components.architectures.containers import (
    Containers,
    ContainersSettings,
    ImageSource,
    image_tag,
)
from components.policies import wildcard_actions
from components.settings import Environment
from components.stages import Stage
from etl_jobs.access import RUNS_AS
from etlctl.offline import Evaluation
from etlctl.stack_config import StackConfig
from tests.support.components import REGION, foundation_refs, register
from tests.support.definitions import MACHINE, arn_of, definition_of, statelint, tasks
from tests.support.resources import as_list, named, of_type, policy, statements
from tests.support.stacks import evaluate_config

COMPONENT = "etl-platform-containers"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/test"
# Pulumi's marker of a secret value in serialized inputs.
SECRET_SIG = "4dabf18193072939515e22adb298388d"
PROD_SETTINGS = {
    "build_on_preview": True,
    "platform": "linux/amd64",
    "stages": {"transform": {"cpu": 1024, "memory": 4096}},
    "keep_images": 5,
}


def build(environment: Environment, settings: dict[str, Any], *, preview: bool = False) -> Evaluation:
    """The component alone, from its args, as the program would build it for this profile."""

    def program() -> None:
        Containers(
            COMPONENT,
            ArchitectureArgs(settings=ContainersSettings(**settings), foundation=foundation_refs(environment)),
        )

    config = StackConfig(project="etl-platform", stack=environment.value, values={"aws:region": REGION}, secret_keys=[])
    return Evaluation(config=config, preview=preview, registrations=register(program, preview=preview))


@pytest.fixture(scope="module")
def dev() -> Evaluation:
    return build(Environment.DEV, {})


@pytest.fixture(scope="module")
def prod() -> Evaluation:
    return build(Environment.PROD, PROD_SETTINGS)


@pytest.fixture(scope="module", params=["dev", "prod"])
def stack(request: pytest.FixtureRequest) -> Evaluation:
    evaluation: Evaluation = request.getfixturevalue(request.param)
    return evaluation


def ours(evaluation: Evaluation, token: str | None = None) -> list[Any]:
    """Custom resources parented by the containers component itself (not by its pipeline)."""
    (component,) = [r for r in evaluation.registrations if r.name == COMPONENT]
    assert component.type == Containers.type_token
    return [r for r in evaluation.resources if r.parent == component.urn and (token is None or r.type == token)]


def _one(evaluation: Evaluation, token: str) -> Any:
    (found,) = ours(evaluation, token)
    return found


def _containers(task_definition: Any) -> list[dict[str, Any]]:
    parsed: list[dict[str, Any]] = json.loads(task_definition.inputs["containerDefinitions"])
    return parsed


def _stage_tasks(evaluation: Evaluation) -> dict[str, dict[str, Any]]:
    (machine,) = of_type(evaluation, MACHINE)
    return {name: task for name, task, _ in tasks(definition_of(machine)) if task["Resource"].endswith("runTask.sync")}


# ---------------------------------------------------------------------------------------------------------------------
# In the program
# ---------------------------------------------------------------------------------------------------------------------


def test_preview_and_update_register_the_same_resources(dev: Evaluation) -> None:
    def census(evaluation: Evaluation) -> Counter[tuple[str, str, bool]]:
        return Counter((r.type, r.name, r.protect) for r in evaluation.registrations)

    assert census(build(Environment.DEV, {}, preview=True)) == census(dev)


def test_dev_vpc_gets_the_interface_endpoints_fargate_pulls_through(tmp_path: Path) -> None:
    def interface_services(evaluation: Evaluation) -> set[str]:
        return {
            r.inputs["serviceName"].removeprefix("com.amazonaws.eu-west-1.")
            for r in of_type(evaluation, "aws:ec2/vpcEndpoint:VpcEndpoint")
            if r.inputs["vpcEndpointType"] == "Interface"
        }

    def program(environment: str) -> Evaluation:
        config = {
            "aws:region": "eu-west-1",
            "etl-platform:environment": environment,
            "etl-platform:architectures": ["containers"],
            "etl-platform:alertEmails": ["oncall@example.com"],
            "etl-platform:replication": {"enabled": False},
        }
        (tmp_path / environment).mkdir()
        return evaluate_config(tmp_path / environment, config, stack=environment)

    assert interface_services(program("dev")) == {"ecr.api", "ecr.dkr", "logs"}
    # prod has NAT gateways, so no interface endpoints are needed.
    assert interface_services(program("prod")) == set()


def test_dev_defaults_to_fargate_spot_and_prod_to_fargate(dev: Evaluation, prod: Evaluation) -> None:
    for evaluation, expected in ((dev, "FARGATE_SPOT"), (prod, "FARGATE")):
        capacity = _one(evaluation, "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders").inputs
        assert capacity["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
        (strategy,) = capacity["defaultCapacityProviderStrategies"]
        assert strategy["capacityProvider"] == expected
        for task in _stage_tasks(evaluation).values():
            assert task["Parameters"]["CapacityProviderStrategy"] == [{"CapacityProvider": expected, "Weight": 1}]


def test_capacity_provider_setting_overrides_the_profile() -> None:
    evaluation = build(Environment.DEV, {"capacity_provider": "FARGATE"})
    capacity = _one(evaluation, "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders").inputs
    assert capacity["defaultCapacityProviderStrategies"][0]["capacityProvider"] == "FARGATE"


# ---------------------------------------------------------------------------------------------------------------------
# ECR (rows 49-50)
# ---------------------------------------------------------------------------------------------------------------------


def test_repository_scans_is_immutable_and_kms_encrypted(stack: Evaluation) -> None:
    repository = _one(stack, "aws:ecr/repository:Repository")
    assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
    assert repository.inputs["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": KEY}]


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
    # The staged copy of the context (normalised modes), relative to the project directory: the same input on every
    # checkout and umask, so pulumi-docker sees no diff and never pushes a new digest under an existing tag.
    assert image["build"]["context"] == f"build/images/etl-{tag}"
    assert image["build"]["dockerfile"] == f"build/images/etl-{tag}/Dockerfile"
    assert (images.REPO_ROOT / image["build"]["dockerfile"]).read_bytes() == images.ETL_DOCKERFILE.read_bytes()
    # From aws:ecr/getAuthorizationToken on this run (the mock's token), never a cached value; kept secret in state.
    registry = image["registry"]
    assert registry.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270", "registry credentials must be secret"
    assert registry["value"] == {"server": url, "username": "AWS", "password": "offline-preview-token"}


def test_build_on_preview_defaults_to_false_and_follows_the_setting(dev: Evaluation, prod: Evaluation) -> None:
    assert _one(dev, "docker:index/image:Image").inputs["buildOnPreview"] is False
    assert _one(prod, "docker:index/image:Image").inputs["buildOnPreview"] is True


def test_an_input_that_makes_pulumi_docker_rebuild_also_moves_the_tag() -> None:
    """Toggling buildOnPreview is a diff pulumi-docker answers with a rebuild and a push: under the old tag an
    IMMUTABLE repository would refuse it, so the tag covers it."""

    def tag(settings: dict[str, Any]) -> str:
        name: str = _one(build(Environment.DEV, settings), "docker:index/image:Image").inputs["imageName"]
        return name.rsplit(":", 1)[1]

    assert tag({}) != tag({"build_on_preview": True})


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
        name: str = _one(build(Environment.DEV, {}), "docker:index/image:Image").inputs["imageName"]
        return name

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
    assert execute["kmsKeyId"] == KEY
    assert execute["logging"] == "OVERRIDE"
    assert execute["logConfiguration"]["cloudWatchEncryptionEnabled"] is True
    exec_logs = named(stack, f"{COMPONENT}-exec-logs")
    assert execute["logConfiguration"]["cloudWatchLogGroupName"].startswith(exec_logs.name)
    assert exec_logs.inputs["kmsKeyId"] == KEY


def test_task_definitions_log_with_awslogs_and_carry_no_secrets(stack: Evaluation) -> None:
    task_logs = named(stack, f"{COMPONENT}-tasks-logs")
    for definition in ours(stack, "aws:ecs/taskDefinition:TaskDefinition"):
        (container,) = _containers(definition)
        log = container["logConfiguration"]
        assert log["logDriver"] == "awslogs"
        assert log["options"]["awslogs-group"].startswith(task_logs.name)
        assert log["options"]["awslogs-region"] == "eu-west-1"
        names = {variable["name"] for variable in container["environment"]}
        zones = {"ETL_RAW_URI", "ETL_STAGED_URI", "ETL_CURATED_URI", "ETL_QUARANTINE_URI"}
        assert names == {*zones, "ETL_MAX_QUARANTINE_RATE"}
        assert all(
            variable["value"].startswith("s3://") for variable in container["environment"] if variable["name"] in zones
        )
        assert "secrets" not in container


def test_task_definitions_are_hardened_fargate_tasks(stack: Evaluation) -> None:
    for definition in ours(stack, "aws:ecs/taskDefinition:TaskDefinition"):
        inputs = definition.inputs
        assert inputs["skipDestroy"] is True, "running executions keep the revision they started with"
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
    for task in _stage_tasks(stack).values():
        network = task["Parameters"]["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert network["AssignPublicIp"] == "DISABLED"
        assert network["Subnets"] == ["subnet-0a", "subnet-0b"]
        assert network["SecurityGroups"] == [arn_of(group).rsplit("/", 1)[1]]
        assert task["Parameters"]["PlatformVersion"] == "LATEST"


# ---------------------------------------------------------------------------------------------------------------------
# The stage runner and its pipeline
# ---------------------------------------------------------------------------------------------------------------------


def test_each_stage_runs_its_own_task_definition_and_writes_its_result(dev: Evaluation) -> None:
    definitions = {
        _containers(d)[0]["command"][0]: arn_of(d) for d in ours(dev, "aws:ecs/taskDefinition:TaskDefinition")
    }
    for name, task in _stage_tasks(dev).items():
        stage = name.lower()
        # A correction runs on the task definition (so the role) of the stage that runs it.
        assert task["Parameters"]["TaskDefinition"] == definitions[RUNS_AS.get(stage, stage)]
        command = task["Parameters"]["Overrides"]["ContainerOverrides"][0]["Command.$"]
        assert command.startswith(f"States.Array('{stage}', '--run-date', $.run_date")
        assert "'--result-uri', States.Format('s3://etl-platform-lake-artifacts-0000000/results/" in command
        # A .sync task's description is large: only its ARN is kept, under a key of its own.
        assert task["ResultSelector"] == {"TaskArn.$": "$.TaskArn"} and task["ResultPath"] == f"$.{stage}_job"


def test_the_pipeline_gates_at_the_configured_rate_and_passes_it_to_validate() -> None:
    validate = _stage_tasks(build(Environment.DEV, {"max_quarantine_rate": 0.25}))["Validate"]
    assert (
        "'--max-quarantine-rate', '0.25'" in validate["Parameters"]["Overrides"]["ContainerOverrides"][0]["Command.$"]
    )


def test_the_pipeline_definition_passes_statelint(stack: Evaluation, tmp_path: Path) -> None:
    (machine,) = of_type(stack, MACHINE)
    result = statelint(machine.inputs["definition"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_failed_task_alerts_once_through_the_pipeline_not_through_eventbridge_too(dev: Evaluation) -> None:
    """runTask.sync fails the Task when the container exits non-zero, and the pipeline alerts; a rule on stopped
    tasks would send a second alert for the same failure."""
    assert not of_type(dev, "aws:cloudwatch/eventRule:EventRule")


def test_log_groups_have_retention_and_the_stack_key(stack: Evaluation) -> None:
    groups = ours(stack, "aws:cloudwatch/logGroup:LogGroup")
    assert sorted(g.name.removeprefix(f"{COMPONENT}-") for g in groups) == ["exec-logs", "tasks-logs"]
    for group in groups:
        assert group.inputs["retentionInDays"] >= (90 if stack.config.stack == "prod" else 14)
        assert group.inputs["kmsKeyId"] == KEY


def test_the_dashboard_gets_the_cluster_and_the_pipeline() -> None:
    def program() -> None:
        component = Containers(
            COMPONENT, ArchitectureArgs(settings=ContainersSettings(), foundation=foundation_refs(Environment.DEV))
        )
        titles.extend(widget["properties"]["title"] for widget in component.widgets)

    titles: list[str] = []
    register(program)
    assert "Containers cluster: CPU and memory" in titles
    assert f"{COMPONENT}-pipeline: executions" in titles


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
    assert sorted(documents) == sorted(["execution-policy", *[f"{s.value}-task-policy" for s in Stage]])
    for name, document in documents.items():
        assert wildcard_actions(document) == [], name
        for statement in statements(document):
            if "*" in as_list(statement["Resource"]):
                assert set(as_list(statement["Action"])) <= set(containers.policies.ACTIONS_REQUIRING_STAR), name


def test_execution_role_pulls_only_our_repository_and_writes_only_task_logs(dev: Evaluation) -> None:
    document = _role_policies(dev)["execution-policy"]
    by_sid = {s.get("Sid"): s for s in statements(document)}
    assert by_sid["PullImage"]["Resource"] == ["arn:aws:ecr:eu-west-1:123456789012:repository/etl-platform-test/etl"]
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


# ---------------------------------------------------------------------------------------------------------------------
# Plain functions (no Pulumi)
# ---------------------------------------------------------------------------------------------------------------------


def test_task_roles_follow_the_declaration_where_it_matters(dev: Evaluation) -> None:
    """Extract never writes landing; load deletes only in curated; every task writes only its own result objects."""
    documents = _role_policies(dev)
    grants = {stage: _grants(documents[f"{stage.value}-task-policy"]) for stage in Stage}
    raw, curated = "arn:aws:s3:::etl-platform-lake-raw-0000000", "arn:aws:s3:::etl-platform-lake-curated-0000000"
    assert not any(arn.startswith(f"{raw}/landing/") for arn in grants[Stage.EXTRACT]["s3:PutObject"])
    assert f"{raw}/landing/*" in grants[Stage.EXTRACT]["s3:DeleteObject"], "claims move files out of landing"
    assert all(arn.startswith(f"{curated}/") for arn in grants[Stage.LOAD]["s3:DeleteObject"])
    for stage in Stage:
        results = {a for a in grants[stage]["s3:PutObject"] if "lake-artifacts" in a}
        assert results == {"arn:aws:s3:::etl-platform-lake-artifacts-0000000/results/*"}
        key = grants[stage]["kms:Decrypt"]
        assert key == {KEY}
        (statement,) = [s for s in statements(documents[f"{stage.value}-task-policy"]) if "kms:Decrypt" in s["Action"]]
        assert statement["Condition"] == {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}
