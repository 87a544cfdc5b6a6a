"""An architecture is its module and one registry entry: a throwaway runner registered from test code only is
accepted by config validation, documented in the JSON Schema, built by the program and used by the orchestrator
(with its setup step in the state machine), with no production file edited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.registry import REGISTRY
from components.settings import ConfigError, json_schema, load_settings
from tests.support.resources import of_type
from tests.support.stacks import evaluate_config
from tests.support.throwaway import SETUP_STATE, ThrowawaySettings

CONFIG = {
    "aws:region": "us-east-1",
    "etl-platform:environment": "dev",
    "etl-platform:architectures": ["throwaway", "stepfunctions"],
    "etl-platform:throwaway": {"batchSeconds": 90},
    "etl-platform:stepfunctions": {"runners": {"transform": "throwaway"}},
}


def _raw(config: dict[str, object]) -> dict[str, str]:
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}


@pytest.fixture
def throwaway() -> Iterator[None]:
    REGISTRY.register("throwaway", "tests.support.throwaway:Throwaway")
    try:
        yield
    finally:
        REGISTRY.unregister("throwaway")


def test_config_accepts_it_and_checks_its_settings(throwaway: None) -> None:
    settings = load_settings(_raw(CONFIG), project="etl-platform", stack="dev")
    assert settings.architecture_settings("throwaway") == ThrowawaySettings(batch_seconds=90)
    with pytest.raises(ConfigError) as caught:
        load_settings(
            _raw({**CONFIG, "etl-platform:throwaway": {"batchSecond": 90}}), project="etl-platform", stack="dev"
        )
    assert "etl-platform:throwaway.batchSecond: unknown key. Did you mean 'batchSeconds'?" in str(caught.value)


def test_the_orchestrator_may_run_only_the_stages_it_can(throwaway: None) -> None:
    wrong = {**CONFIG, "etl-platform:stepfunctions": {"runners": {"load": "throwaway"}}}
    with pytest.raises(ConfigError) as caught:
        load_settings(_raw(wrong), project="etl-platform", stack="dev")
    assert (
        "etl-platform:stepfunctions.runners.load: 'throwaway' cannot run the load stage; choose one of: stepfunctions."
        in str(caught.value)
    )


def test_unknown_before_registration() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_raw(CONFIG), project="etl-platform", stack="dev")
    assert "etl-platform:architectures[0]: 'throwaway' is not an architecture." in str(caught.value)
    assert "etl-platform:throwaway: unknown key." in str(caught.value)


def test_the_json_schema_documents_it(throwaway: None) -> None:
    schema = json_schema()
    config = schema["properties"]["config"]["properties"]
    assert "throwaway" in config["etl-platform:architectures"]["items"]["enum"]
    assert "etl-platform:throwaway" in config
    assert "batchSeconds" in json.dumps(schema["$defs"]["ThrowawaySettings"])


def test_the_program_builds_it_and_the_pipeline_runs_transform_on_it(throwaway: None, tmp_path: Path) -> None:
    evaluation = evaluate_config(tmp_path, CONFIG)
    assert [r.name for r in of_type(evaluation, "etl:architectures:Throwaway")] == ["etl-platform-throwaway"]
    (machine,) = of_type(evaluation, "aws:sfn/stateMachine:StateMachine")
    states = json.loads(machine.inputs["definition"])["States"]
    assert states["CheckDate"]["Next"] == "IsDate" and states["IsDate"]["Choices"][0]["Next"] == SETUP_STATE
    transform = states["Sources"]["ItemProcessor"]["States"]["Transform"]
    assert transform["Resource"] == "arn:aws:states:::sqs:sendMessage"
    assert transform["TimeoutSeconds"] == 90
    # It returns no payload, so the pipeline reads the result object the job writes.
    assert transform["Next"] == "ReadTransformResult"
    assert "'--result-uri'" in transform["Parameters"]["MessageBody.$"]
