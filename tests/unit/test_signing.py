"""Lambda code signing (the prod profile's default, `codeSigning` elsewhere): a Signer profile, a code-signing config
that enforces it, and every function package and layer deployed from its signed copy (docs/CONTROLS.md row 62)."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.functions import EtlFunction, EtlFunctionArgs
from components.refs import SigningRefs
from etlctl.offline import Evaluation
from tests.support.components import foundation_refs, register
from tests.support.definitions import arn_of
from tests.support.resources import of_type
from tests.support.stacks import evaluate_config, evaluated

FUNCTION = "aws:lambda/function:Function"
LAYER = "aws:lambda/layerVersion:LayerVersion"
JOB = "aws:signer/signingJob:SigningJob"


def _stack(tmp_path: Path, **keys: object) -> Evaluation:
    config = {
        "aws:region": "eu-west-1",
        "etl-platform:environment": "dev",
        "etl-platform:architectures": ["serverless", "stepfunctions"],
        "etl-platform:stepfunctions": {"runners": {"extract": "serverless"}},
        **{f"etl-platform:{key}": value for key, value in keys.items()},
    }
    return evaluate_config(tmp_path, config)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Evaluation:
    return _stack(tmp_path_factory.mktemp("signed"), codeSigning=True)


def test_the_config_enforces_the_stacks_lambda_profile(signed: Evaluation) -> None:
    (profile,) = of_type(signed, "aws:signer/signingProfile:SigningProfile")
    assert profile.inputs["platformId"] == "AWSLambda-SHA384-ECDSA"
    assert profile.inputs["namePrefix"] == "etl_platform_dev_", "Signer names allow no dashes"
    (config,) = of_type(signed, "aws:lambda/codeSigningConfig:CodeSigningConfig")
    assert config.inputs["policies"] == {"untrustedArtifactOnDeployment": "Enforce"}
    (version,) = config.inputs["allowedPublishers"]["signingProfileVersionArns"]
    assert version.startswith("arn:aws:signer:eu-west-1:123456789012:/signing-profiles/etl_platform_dev_")


def _signed_keys(evaluation: Evaluation) -> dict[str, str]:
    """Signed object key -> the signing job's name, as the mocks answer for each job."""
    keys = {}
    for job in of_type(evaluation, JOB):
        destination = job.inputs["destination"]["s3"]
        source = job.inputs["source"]["s3"]
        assert source["bucket"] == destination["bucket"] and source["version"], "a versioned object of the bucket"
        keys[destination["prefix"]] = job.name
    return keys


def test_every_function_deploys_its_signed_copy_under_the_enforcing_config(signed: Evaluation) -> None:
    (config,) = of_type(signed, "aws:lambda/codeSigningConfig:CodeSigningConfig")
    prefixes = _signed_keys(signed)
    functions = of_type(signed, FUNCTION)
    assert len(functions) == 9  # six serverless, three of the orchestrator's own
    for function in functions:
        inputs = function.inputs
        assert inputs["codeSigningConfigArn"] == arn_of(config), function.name
        assert "code" not in inputs, f"{function.name} uploads an unsigned zip directly"
        assert any(inputs["s3Key"].startswith(prefix) for prefix in prefixes if "/functions/" in prefix)
        assert inputs["s3Bucket"].startswith("etl-platform-lake-artifacts-")


def test_every_layer_deploys_its_signed_copy(signed: Evaluation) -> None:
    """An enforcing config rejects a function whose layers are unsigned."""
    layers = of_type(signed, LAYER)
    assert len(layers) == 2
    layer_prefixes = [prefix for prefix in _signed_keys(signed) if "/layers/" in prefix]
    for layer in layers:
        assert any(layer.inputs["s3Key"].startswith(prefix) for prefix in layer_prefixes), layer.name


def test_one_signed_package_per_architecture_and_one_per_layer(signed: Evaluation) -> None:
    assert sorted(job.name for job in of_type(signed, JOB)) == [
        "etl-platform-serverless-code-signing",
        "etl-platform-serverless-layer-signing",
        "etl-platform-stepfunctions-code-signing",
        "etl-platform-stepfunctions-layer-signing",
    ]


def test_prod_signs_by_default_and_dev_does_not() -> None:
    prod, dev = evaluated("prod"), evaluated("dev")
    assert of_type(prod, "aws:lambda/codeSigningConfig:CodeSigningConfig")
    assert all(f.inputs.get("codeSigningConfigArn") for f in of_type(prod, FUNCTION))
    assert not of_type(dev, "aws:lambda/codeSigningConfig:CodeSigningConfig")
    assert all("code" in f.inputs and "codeSigningConfigArn" not in f.inputs for f in of_type(dev, FUNCTION))


def test_a_function_without_its_signed_copy_is_refused_in_a_signing_stack() -> None:
    def program() -> None:
        refs = foundation_refs()
        signing = SigningRefs(profile_name=refs.key.id, config_arn=refs.key.arn)
        foundation = type(refs)(**{**refs.__dict__, "signing": signing})
        EtlFunction("f", EtlFunctionArgs(foundation=foundation, handler="etl_jobs.handlers.extract.handler",
                                         service_name="f"))  # fmt: skip

    with pytest.raises(Exception, match="the stack enforces code signing; pass signed_code"):
        register(program)
