"""The workflow functions: argument checks, and the shape of the gate and of the ECS validation-result read."""

from __future__ import annotations

import pytest

from components.workflows import PipelineStages, ValidationResultLocation, orchestrated_pipeline, sequential_pipeline
from tests.unit.test_asl import ECS, LAMBDA, TOPIC

ALL_LAMBDA = PipelineStages(LAMBDA, LAMBDA, LAMBDA, LAMBDA)


def test_non_lambda_validate_needs_a_result_location() -> None:
    with pytest.raises(ValueError) as raised:
        sequential_pipeline(PipelineStages(ECS, ECS, ECS, ECS), TOPIC)
    assert str(raised.value) == (
        "validation_result is required when the validate stage does not run on Lambda: EcsInvoker returns no payload, "
        "so its result is read from S3"
    )


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_threshold_must_be_a_rate(rate: float) -> None:
    with pytest.raises(ValueError, match=f"max_quarantine_rate must be between 0 and 1, got {rate}"):
        sequential_pipeline(ALL_LAMBDA, TOPIC, max_quarantine_rate=rate)


def test_sources_must_be_unique_and_present() -> None:
    with pytest.raises(ValueError, match=r"sources must be unique, got \['a', 'a'\]"):
        orchestrated_pipeline(["a", "a"], ALL_LAMBDA, TOPIC)
    with pytest.raises(ValueError, match="sources must name at least one source"):
        orchestrated_pipeline([], ALL_LAMBDA, TOPIC)


def test_gate_uses_the_configured_threshold() -> None:
    gate = sequential_pipeline(ALL_LAMBDA, TOPIC, max_quarantine_rate=0.02).to_dict()["States"]["QualityGate"]
    assert {
        "Variable": "$.validate.Payload.quarantine_rate",
        "NumericGreaterThan": 0.02,
        "Next": "QualityGateFailed",
    } in (gate["Choices"])
    assert gate["Default"] == "Load"


def test_ecs_validate_writes_and_reads_the_same_result_object() -> None:
    states = sequential_pipeline(
        PipelineStages(ECS, ECS, ECS, ECS), TOPIC, validation_result=ValidationResultLocation("bucket", "checks/")
    ).to_dict()["States"]
    command = states["Validate"]["Parameters"]["Overrides"]["ContainerOverrides"][0]["Command.$"]
    assert command == (
        "States.Array('validate', '--run-date', $.run_date, '--source', $.source, '--result-uri', "
        "States.Format('s3://bucket/checks/{}.json', $$.Execution.Name))"
    )
    read = states["ReadValidationResult"]
    assert read["Parameters"] == {"Bucket": "bucket", "Key.$": "States.Format('checks/{}.json', $$.Execution.Name)"}
    assert read["ResultSelector"] == {"Payload.$": "States.StringToJson($.Body)"}
    assert read["ResultPath"] == "$.validate"
    assert states["Validate"]["Next"] == "ReadValidationResult"


def test_parallel_has_one_branch_per_source_and_map_limits_concurrency() -> None:
    states = orchestrated_pipeline(["orders", "customers"], ALL_LAMBDA, TOPIC, max_concurrency=3).to_dict()["States"]
    assert [branch["StartAt"] for branch in states["ExtractSources"]["Branches"]] == [
        "Source orders",
        "Source customers",
    ]
    assert states["TransformPartitions"]["MaxConcurrency"] == 3
    assert states["TransformPartitions"]["ItemsPath"] == "$.extract"
