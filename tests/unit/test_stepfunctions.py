"""The stepfunctions architecture: its own Lambdas only for the stages it runs itself, every stage on the runner the
stack file chooses (through the runner protocol, whatever kind it is), and the orchestrator's least-privilege role.

The orchestration itself (logging, schedule, alarms) is tested from its args in test_orchestration.py; the definition
in test_pipelines.py. These tests evaluate the program, because wiring runners across architectures is the point."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from components.architectures.base import ArchitectureArgs
from components.architectures.stepfunctions import STAGE_HANDLERS, StepFunctions, StepFunctionsSettings
from components.settings import ConfigError
from etlctl.mocks import Registration
from etlctl.offline import Evaluation, ProgramError
from tests.support.components import foundation_refs, register
from tests.support.definitions import MACHINE, arn_of, definition_of, statelint, states, tasks
from tests.support.resources import named, of_type, policy, statements
from tests.support.stacks import evaluate_config, evaluated

PREFIX = "etl-platform-stepfunctions"


def _config(architectures: list[str], **stepfunctions: Any) -> dict[str, object]:
    return {
        "aws:region": "eu-west-1",
        "etl-platform:environment": "dev",
        "etl-platform:architectures": architectures,
        "etl-platform:stepfunctions": stepfunctions,
    }


CONFIGS: dict[str, dict[str, object]] = {
    "alone": _config(["stepfunctions"], sources=["orders", "customers"], maxConcurrency=3, maxQuarantineRate=0.05),
    "serverless": _config(
        ["serverless", "stepfunctions"], runners={"extract": "serverless", "transform": "serverless"}
    ),
    "containers": _config(["containers", "stepfunctions"], runners={"transform": "containers"}),
}
_cache: dict[str, Evaluation] = {}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Any:
    def get(name: str) -> Evaluation:
        if name not in _cache:
            _cache[name] = evaluate_config(tmp_path_factory.mktemp(name), CONFIGS[name])
        return _cache[name]

    return get


def ours(evaluation: Evaluation, token: str) -> list[Registration]:
    return [r for r in of_type(evaluation, token) if r.name.startswith(PREFIX)]


def machine_of(evaluation: Evaluation) -> dict[str, Any]:
    (machine,) = ours(evaluation, MACHINE)
    return definition_of(machine)


def test_own_lambdas_run_the_stage_handlers_and_are_the_ones_invoked(stack: Any) -> None:
    alone = stack("alone")
    functions = ours(alone, "aws:lambda/function:Function")
    assert sorted(f.inputs["handler"] for f in functions) == sorted(STAGE_HANDLERS.values())
    invoked = {t["Parameters"]["FunctionName"] for _, t, _ in tasks(machine_of(alone)) if "lambda" in t["Resource"]}
    assert invoked == {arn_of(f) for f in functions}
    transform = next(f for f in functions if "-transform-" in f.name)
    # Unreserved: the Map bounds a run's invocations, and a reservation would take quota no stack file declared.
    assert transform.inputs["reservedConcurrentExecutions"] == -1
    (layer,) = ours(alone, "aws:lambda/layerVersion:LayerVersion")
    assert all(f.inputs["layers"] == [arn_of(layer)] for f in functions), "the dependency layer"


def test_the_layer_object_is_owned_by_one_architecture(tmp_path: Path) -> None:
    """Two architectures with a layer write two objects: deleting one never removes the other's."""
    both = evaluate_config(tmp_path, _config(["serverless", "stepfunctions"], runners={"extract": "serverless"}))
    keys = [r.inputs["key"] for r in of_type(both, "aws:s3/bucketObjectv2:BucketObjectv2")]
    assert len(keys) == 2 and len(set(keys)) == 2


def test_stage_handlers_exist_in_etl_jobs() -> None:
    for handler in STAGE_HANDLERS.values():
        module, _, function = handler.rpartition(".")
        assert callable(getattr(importlib.import_module(module), function)), handler


def test_stages_run_on_the_runners_the_stack_file_chooses(stack: Any) -> None:
    serverless = stack("serverless")
    own = {arn_of(f) for f in ours(serverless, "aws:lambda/function:Function")}
    assert sorted(f.name.split("-")[3] for f in ours(serverless, "aws:lambda/function:Function")) == [
        "load",
        "validate",
    ]
    every = states(machine_of(serverless))
    others = {arn_of(f) for f in of_type(serverless, "aws:lambda/function:Function")} - own
    assert every["Extract"]["Parameters"]["FunctionName"] in others
    assert every["Transform"]["Parameters"]["FunctionName"] in others
    assert every["Validate"]["Parameters"]["FunctionName"] in own and every["Load"]["Parameters"]["FunctionName"] in own

    containers = stack("containers")
    transform = states(machine_of(containers))["Transform"]
    assert transform["Resource"] == "arn:aws:states:::ecs:runTask.sync"
    task_definitions = {arn_of(r) for r in of_type(containers, "aws:ecs/taskDefinition:TaskDefinition")}
    assert transform["Parameters"]["TaskDefinition"] in task_definitions
    assert transform["Parameters"]["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"


def test_the_prod_stack_file_mixes_lambda_the_database_and_fargate() -> None:
    prod = evaluated("prod")
    every = states(machine_of(prod))
    kinds = {
        stage: every[stage]["Resource"].rsplit(":::", 1)[1] for stage in ("Extract", "Transform", "Validate", "Load")
    }
    assert kinds == {
        "Extract": "lambda:invoke",
        "Transform": "lambda:invoke",
        "Validate": "lambda:invoke",
        "Load": "ecs:runTask.sync",
    }
    database = {arn_of(f) for f in of_type(prod, "aws:lambda/function:Function") if "-database-" in f.name}
    assert {every[stage]["Parameters"]["FunctionName"] for stage in ("Transform", "Validate")} <= database
    assert every["Extract"]["Parameters"]["FunctionName"] not in database
    assert "'--max-quarantine-rate', '0.05'" in every["Validate"]["Parameters"]["Payload"]["argv.$"], (
        "prod's gate reaches the job"
    )


def test_the_machine_role_passes_only_the_task_roles_and_runs_only_those_tasks(stack: Any) -> None:
    containers = stack("containers")
    document = policy(named(containers, "stepfunctions-role-policy").inputs["policy"])
    (passing,) = [s for s in statements(document) if "iam:PassRole" in s["Action"]]
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    roles = {
        arn_of(r) for r in of_type(containers, "aws:iam/role:Role") if r.name.startswith("etl-platform-containers")
    }
    assert set(passing["Resource"]) <= roles
    (running,) = [s for s in statements(document) if "ecs:RunTask" in s["Action"]]
    assert running["Resource"] == ["arn:aws:ecs:eu-west-1:123456789012:task-definition/etl-platform-dev-transform:*"]


@pytest.mark.parametrize("name", ["alone", "serverless", "containers"])
def test_rendered_definitions_pass_statelint(name: str, stack: Any, tmp_path: Path) -> None:
    result = statelint(json.dumps(machine_of(stack(name))), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_runner_missing_at_build_time_is_a_config_error() -> None:
    settings = StepFunctionsSettings.model_validate({"runners": {"load": "serverless"}})

    def program() -> None:
        StepFunctions(PREFIX, ArchitectureArgs(settings=settings, foundation=foundation_refs(), runners={}))

    with pytest.raises(ConfigError) as caught:
        register(program)
    assert str(caught.value) == (
        "etl-platform:stepfunctions.runners.load: 'serverless' exposes no stage runner in this stack"
    )


def test_express_is_refused_when_its_own_lambdas_could_outlast_it(tmp_path: Path) -> None:
    with pytest.raises(ProgramError, match=r"stepfunctions.type: EXPRESS does not fit this pipeline: a run may take"):
        evaluate_config(tmp_path, _config(["stepfunctions"], type="EXPRESS"))
