"""The EMR architecture built from its args under mocks, in both modes: its settings' checks with their messages, the
serverless application and the cluster's security configuration and roles (CONTROLS rows 11 and 30-32, 66), the
definitions its runner renders (statelint, the pipeline's shape: setup, carried cluster id, teardown on both paths),
the client token, the job's arguments against the Spark job's own, and the stepfunctions orchestrator using it.

What moto cannot execute, so no test here runs it: moto's EMR and EMR Serverless keep metadata only, and moto's Step
Functions engine runs none of the EMR integrations (`emr-serverless:startJobRun.sync`,
`elasticmapreduce:createCluster.sync` / `addStep.sync` / `terminateCluster.sync`); the job roles are exercised by
tests/integration/test_rendered_roles.py, which replays each EMR stage's S3 calls under its rendered role. What only
real EMR shows: the application starting and stopping, Spot capacity and the switch to on-demand, managed scaling,
the Python environment unpacked by `spark.archives`, and logs arriving.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from components import packaging
from components.architectures import emr
from components.architectures.base import ArchitectureArgs
from components.architectures.emr import Emr, EmrSettings
from components.pipelines import StageCall
from components.settings import Environment
from components.stages import Stage
from etl_jobs import spark_job
from etl_jobs.engines import spark_settings
from etlctl.mocks import Registration
from tests.support.components import foundation_refs, register
from tests.support.definitions import MACHINE, definition_of, evaluate, parameters, statelint, states
from tests.support.resources import policy, statements
from tests.support.stacks import evaluate_config

COMPONENT = "etl-platform-emr"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/test"
CLUSTER = {"mode": "cluster", "cluster": {}}


def build(settings: dict[str, Any], environment: Environment = Environment.DEV) -> list[Registration]:
    model = EmrSettings.model_validate(settings)
    return register(lambda: Emr(COMPONENT, ArchitectureArgs(settings=model, foundation=foundation_refs(environment))))


@pytest.fixture(scope="module")
def serverless() -> list[Registration]:
    return build({})


@pytest.fixture(scope="module")
def cluster() -> list[Registration]:
    return build(CLUSTER, Environment.PROD)


def one(registrations: list[Registration], token: str, suffix: str = "") -> Registration:
    (found,) = [r for r in registrations if r.type == token and r.name.endswith(suffix)]
    return found


def machine(registrations: list[Registration]) -> dict[str, Any]:
    return definition_of(one(registrations, MACHINE))


def messages(settings: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        EmrSettings.model_validate(settings)
    return [f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}" for e in raised.value.errors()]


# ---------------------------------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------------------------------


def test_release_must_run_the_engines_spark() -> None:
    assert EmrSettings().release_label == "emr-7.11.0"
    assert EmrSettings(release_label="emr-7.12.0").release_label == "emr-7.12.0"
    for release in ("emr-7.10.0", "emr-8.0.0", "emr-6.15.0"):
        (message,) = messages({"releaseLabel": release})
        assert message.startswith(f"releaseLabel: '{release}' is not an EMR 7.x release from emr-7.11.0 on")


def test_settings_of_the_other_mode_are_refused() -> None:
    assert messages({"cluster": {"maxInstances": 4}}) == [
        "cluster: settings for mode cluster, but mode is serverless; remove them or set mode"
    ]
    assert messages({"mode": "cluster", "serverless": {"maxVcpu": 8}}) == [
        "serverless: settings for mode serverless, but mode is cluster; remove them or set mode"
    ]


def test_maximum_capacity_must_hold_one_job() -> None:
    assert messages({"serverless": {"maxVcpu": 8}}) == [
        "serverless.maxVcpu: 8 vCPU cannot hold one job at its largest (18 vCPU: job sizes)"
    ]


def test_worker_sizes_are_ones_emr_serverless_offers() -> None:
    assert messages({"job": {"executorCores": 3, "driverMemoryGb": 40}}) == [
        "job.driverMemoryGb: 40 GB for 2 vCPU: a worker takes 4-16 GB (2-8 GB per vCPU)",
        "job.executorCores: 3 vCPU: use one of 1, 2, 4, 8, 16",
    ]


def test_cluster_instance_types_match_the_architecture() -> None:
    (message,) = messages({"mode": "cluster", "cluster": {"task": {"instanceTypes": ["m7i.2xlarge"], "spot": 1}}})
    assert message == (
        "cluster.task.instanceTypes: ['m7i.2xlarge'] do not match architecture arm64: use Graviton (arm64, e.g. "
        "m7g.xlarge) types"
    )
    assert messages({"mode": "cluster", "cluster": {"core": {"instanceTypes": ["m7g.xlarge"]}, "maxInstances": 2}}) == [
        "cluster.core: the core fleet needs at least one instance (on-demand or spot)",
    ]


# ---------------------------------------------------------------------------------------------------------------------
# Serverless mode
# ---------------------------------------------------------------------------------------------------------------------


def test_application_matches_the_engine_and_stops_when_idle(serverless: list[Registration]) -> None:
    application = one(serverless, "aws:emrserverless/application:Application").inputs
    assert application["releaseLabel"] == "emr-7.11.0" and application["type"] == "spark"
    assert application["architecture"] == "ARM64"
    assert application["autoStartConfiguration"] == {"enabled": True}
    assert application["autoStopConfiguration"] == {"enabled": True, "idleTimeoutMinutes": 5}
    assert application["maximumCapacity"] == {"cpu": "32 vCPU", "memory": "128 GB", "disk": "1000 GB"}
    assert "initialCapacities" not in application  # nothing bills while no job runs
    assert application["networkConfiguration"]["subnetIds"] == ["subnet-0a", "subnet-0b"]
    monitoring = application["monitoringConfiguration"]
    assert monitoring["s3MonitoringConfiguration"]["encryptionKeyArn"] == KEY
    assert monitoring["s3MonitoringConfiguration"]["logUri"].endswith("/emr/logs/serverless/")
    assert monitoring["cloudwatchLoggingConfiguration"]["enabled"] is True


def test_pre_initialized_workers_only_when_asked() -> None:
    registrations = build({"serverless": {"preInitialized": {"drivers": 1, "executors": 2}}})
    capacities = one(registrations, "aws:emrserverless/application:Application").inputs["initialCapacities"]
    assert {c["initialCapacityType"]: c["initialCapacityConfig"]["workerCount"] for c in capacities} == {
        "Driver": 1,
        "Executor": 2,
    }


def test_each_stage_runs_under_its_own_job_role(serverless: list[Registration]) -> None:
    tasks = states(machine(serverless))
    roles = {stage: tasks[stage]["Parameters"]["ExecutionRoleArn"] for stage in ("Extract", "Transform", "Load")}
    assert len(set(roles.values())) == 3
    for stage in ("extract", "load"):
        trust = policy(one(serverless, "aws:iam/role:Role", f"-{stage}-job-role").inputs["assumeRolePolicy"])
        (statement,) = statements(trust)
        assert statement["Principal"] == {"Service": "emr-serverless.amazonaws.com"}
        assert statement["Condition"]["ArnLike"]["aws:SourceArn"][0].startswith("arn:aws:emr-serverless:eu-west-1:")
    # Extract may not write curated; load may.
    written = {
        stage: {
            resource
            for s in statements(
                policy(one(serverless, "aws:iam/rolePolicy:RolePolicy", f"-{stage}-job-policy").inputs["policy"])
            )
            if "s3:PutObject" in s["Action"]
            for resource in s["Resource"]
        }
        for stage in ("extract", "load")
    }
    assert not any("lake-curated" in r for r in written["extract"])
    assert any("lake-curated" in r for r in written["load"])
    assert all("/emr/logs/*" in " ".join(w) for w in written.values())


def test_job_run_token_is_derived_from_the_execution(serverless: list[Registration]) -> None:
    transform = states(machine(serverless))["Transform"]
    state = {"run_date": "2024-05-01", "source": "orders"}

    def token(**context: Any) -> str:
        base = {"Execution": {"Id": "arn:exec:1", "Name": "1", "RedriveCount": 0}, "State": {"RetryCount": 0}}
        for key, value in context.items():
            base[key].update(value)
        sent = parameters(transform["Parameters"], state, base)
        return str(sent["ClientToken"])

    first = token()
    assert len(first) <= 64 and first == token()  # a re-sent call of one attempt: the same job run
    assert len({first, token(State={"RetryCount": 1}), token(Execution={"RedriveCount": 1}),
                token(Execution={"Id": "arn:exec:2"})}) == 4  # fmt: skip
    assert "ClientToken" not in json.dumps(transform["Parameters"]["JobDriver"])


def test_failed_job_runs_outside_a_pipeline_alert_once(serverless: list[Registration]) -> None:
    rule = one(serverless, "aws:cloudwatch/eventRule:EventRule")
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["detail"]["state"] == ["FAILED"]
    assert pattern["detail"]["jobRunName"] == [{"anything-but": {"prefix": emr.PIPELINE_RUN_PREFIX}}]
    names = {
        stage: evaluate(
            states(machine(serverless))[stage]["Parameters"]["Name.$"],
            {"source": "orders"},
            {"Execution": {"Name": "exec"}},
        )
        for stage in ("Transform", "Load")
    }
    assert all(name.startswith(emr.PIPELINE_RUN_PREFIX) for name in names.values())
    target = one(serverless, "aws:cloudwatch/eventTarget:EventTarget").inputs
    assert target["deadLetterConfig"]["arn"] and target["retryPolicy"]["maximumRetryAttempts"] == 3


def test_serverless_definition_passes_statelint(serverless: list[Registration], tmp_path: Path) -> None:
    result = statelint(json.dumps(machine(serverless)), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------------------------------
# Cluster mode
# ---------------------------------------------------------------------------------------------------------------------


def test_each_run_creates_its_cluster_and_always_terminates_it(cluster: list[Registration]) -> None:
    definition = machine(cluster)
    every = states(definition)
    top = definition["States"]
    assert top["IsDate"]["Choices"][0]["Next"] == "EmrCreateCluster"
    assert top["Sources"]["ItemSelector"]["emr_cluster.$"] == "$.emr_cluster"
    assert top["Load"]["Next"] == "ReadLoadResult" and top["ReadLoadResult"]["Next"] == "EmrClusterCreatedSuccess"
    for label, after in (("Success", "Succeeded"), ("Failure", "NotifyFailure")):
        check = top[f"EmrClusterCreated{label}"]
        assert check["Choices"] == [
            {"Variable": "$.emr_cluster.ClusterId", "IsPresent": True, "Next": f"EmrTerminateCluster{label}"}
        ]
        assert check["Default"] == after  # setup failed before a cluster existed
        terminate = top[f"EmrTerminateCluster{label}"]
        assert terminate["Resource"].endswith("elasticmapreduce:terminateCluster.sync")
        assert terminate["Next"] == after and terminate["ResultPath"] == "$.emr_teardown"
    # Every failure, a refused source included, goes through the failure teardown before the alert is sent.
    assert top["Alert"]["Next"] == "EmrClusterCreatedFailure"
    assert top["InvalidInput"]["Next"] == "EmrClusterCreatedFailure"
    steps = [name for name, state in every.items() if state.get("Resource", "").endswith("addStep.sync")]
    # The stages, and a manual start's corrections on the cluster the setup made (retract on load's role, reprocess
    # on extract's).
    assert sorted(steps) == ["Extract", "Load", "Reprocess", "Retract", "Transform", "Validate"]
    for name in steps:
        step = every[name]["Parameters"]
        assert step["ClusterId.$"] == "$.emr_cluster.ClusterId"
        assert step["Step"]["ActionOnFailure"] == "TERMINATE_CLUSTER"


def test_cluster_request(cluster: list[Registration]) -> None:
    request = states(machine(cluster))["EmrCreateCluster"]["Parameters"]
    assert request["ReleaseLabel"] == "emr-7.11.0" and request["Applications"] == [{"Name": "Spark"}]
    assert request["LogUri"].endswith("/emr/logs/clusters/") and request["LogEncryptionKmsKeyId"] == KEY
    assert request["AutoTerminationPolicy"] == {"IdleTimeout": 3600}
    instances = request["Instances"]
    assert instances["KeepJobFlowAliveWhenNoSteps"] is True
    assert instances["Ec2SubnetIds"] == ["subnet-0a", "subnet-0b"]
    fleets = {fleet["InstanceFleetType"]: fleet for fleet in instances["InstanceFleets"]}
    assert fleets["MASTER"]["TargetOnDemandCapacity"] == 1 and "TargetSpotCapacity" not in fleets["MASTER"]
    assert len(fleets["CORE"]["InstanceTypeConfigs"]) > 1 and len(fleets["TASK"]["InstanceTypeConfigs"]) > 1
    assert fleets["TASK"]["TargetSpotCapacity"] == 2
    spot = fleets["TASK"]["LaunchSpecifications"]["SpotSpecification"]
    assert spot == {
        "AllocationStrategy": "capacity-optimized",
        "TimeoutAction": "SWITCH_TO_ON_DEMAND",
        "TimeoutDurationMinutes": 10,
    }
    limits = request["ManagedScalingPolicy"]["ComputeLimits"]
    assert limits["UnitType"] == "InstanceFleetUnits" and limits["MaximumCapacityUnits"] == 10
    tags = {tag["Key"]: tag["Value"] for tag in request["Tags"]}
    assert tags[emr.EMR_MANAGED_TAG] == "true" and tags["Environment"] == "prod"


def test_security_configuration_encrypts_at_rest_and_in_transit_only_with_certificates(
    cluster: list[Registration],
) -> None:
    configuration = json.loads(
        one(cluster, "aws:emr/securityConfiguration:SecurityConfiguration").inputs["configuration"]
    )
    encryption = configuration["EncryptionConfiguration"]
    assert encryption["EnableAtRestEncryption"] is True
    assert encryption["AtRestEncryptionConfiguration"]["S3EncryptionConfiguration"] == {
        "EncryptionMode": "SSE-KMS",
        "AwsKmsKey": KEY,
    }
    assert (
        encryption["AtRestEncryptionConfiguration"]["LocalDiskEncryptionConfiguration"]["EnableEbsEncryption"] is True
    )
    assert encryption["EnableInTransitEncryption"] is False
    uri = "s3://pki-bucket/emr/certs.zip"
    with_certs = build({"mode": "cluster", "cluster": {"tlsCertificatesUri": uri}}, Environment.PROD)
    tls = json.loads(one(with_certs, "aws:emr/securityConfiguration:SecurityConfiguration").inputs["configuration"])
    assert tls["EncryptionConfiguration"]["EnableInTransitEncryption"] is True
    assert (
        tls["EncryptionConfiguration"]["InTransitEncryptionConfiguration"]["TLSCertificateConfiguration"]["S3Object"]
        == uri
    )


def test_instance_role_is_generated_not_the_deprecated_managed_one(cluster: list[Registration]) -> None:
    attachments = [
        r.inputs["policyArn"] for r in cluster if r.type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
    ]
    assert attachments == [emr.SERVICE_POLICY_ARN]
    role = one(cluster, "aws:iam/role:Role", "-instance-role").inputs
    assert statements(policy(role["assumeRolePolicy"]))[0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    document = policy(one(cluster, "aws:iam/rolePolicy:RolePolicy", "-instance-policy").inputs["policy"])
    resources = [r for s in statements(document) for r in s["Resource"]]
    assert "*" not in resources and all(not r.startswith("arn:aws:s3:::*") for r in resources)
    # One cluster runs every stage, so its role is the union of the stages' declared grants.
    for stage in Stage:
        for statement in emr.job_statements([stage], _buckets(), key_arn=KEY, region="eu-west-1"):
            if statement.get("Sid", "").startswith("List"):
                continue
            for resource in statement["Resource"]:
                assert resource in resources, (stage, resource)


def _buckets() -> dict[str, str]:
    return {
        zone: f"arn:aws:s3:::etl-platform-lake-{zone}-0000000"
        for zone in ("raw", "staged", "curated", "quarantine", "artifacts")
    }


def test_subnets_and_groups_carry_the_tag_the_service_policy_needs(cluster: list[Registration]) -> None:
    tags = [r.inputs for r in cluster if r.type == "aws:ec2/tag:Tag"]
    assert sorted(t["resourceId"] for t in tags) == ["subnet-0a", "subnet-0b"]
    assert {(t["key"], t["value"]) for t in tags} == {(emr.EMR_MANAGED_TAG, "true")}
    groups = [r.inputs for r in cluster if r.type == "aws:ec2/securityGroup:SecurityGroup"]
    assert len(groups) == 3 and all(
        g["tags"] == {emr.EMR_MANAGED_TAG: "true"} and g["revokeRulesOnDelete"] for g in groups
    )


def test_cluster_definition_passes_statelint(cluster: list[Registration], tmp_path: Path) -> None:
    result = statelint(json.dumps(machine(cluster)), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_long_lived_cluster_in_state(cluster: list[Registration]) -> None:
    assert not [r for r in cluster if r.type in ("aws:emr/cluster:Cluster", "aws:emr/instanceFleet:InstanceFleet")]


# ---------------------------------------------------------------------------------------------------------------------
# The same job as Glue and local runs
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["serverless", "cluster"])
def test_job_arguments_and_settings(mode: str, serverless: list[Registration], cluster: list[Registration]) -> None:
    """What EMR gives the entry module equals `etl_jobs.spark_job`'s own argument vector for the call (paths aside),
    and every Spark setting of the job's one settings module reaches the job."""
    registrations = serverless if mode == "serverless" else cluster
    every = states(machine(registrations))
    context = {"Execution": {"Name": "exec", "Id": "arn:exec", "RedriveCount": 0}, "State": {"RetryCount": 0}}
    state = {"run_date": "2024-05-01", "source": "orders", "emr_cluster": {"ClusterId": "j-1"}}
    for name, stage in (("Transform", Stage.TRANSFORM), ("Validate", Stage.VALIDATE)):
        sent = parameters(every[name]["Parameters"], state, context)
        if mode == "serverless":
            arguments = sent["JobDriver"]["SparkSubmit"]["EntryPointArguments"]
            conf = sent["JobDriver"]["SparkSubmit"]["SparkSubmitParameters"].split()
        else:
            command = sent["Step"]["HadoopJarStep"]["Args"]
            entry = next(i for i, part in enumerate(command) if part.endswith(".py"))
            arguments, conf = command[entry + 1 :], command[:entry]
        result_uri = arguments[arguments.index("--result-uri") + 1]
        rate = "0.1" if stage is Stage.VALIDATE else None
        source = "orders" if stage is Stage.TRANSFORM else None
        expected = spark_job.job_arguments(
            stage.value, "2024-05-01", source=source, result_uri=result_uri, max_quarantine_rate=rate
        )
        assert arguments == expected
        if mode == "cluster":
            # The whole step is the spark-submit command line the job runs locally, paths aside: EMR adds only the
            # deploy mode, and its --conf pairs (sizes, environment, code) are extra settings of the same command.
            extra = dict(pair.split("=", 1) for pair in conf[conf.index("--conf") + 1 :: 2])
            local = spark_job.submit_command(expected, extra_conf=extra)
            entry_point = command[entry]
            assert command == [
                local[0],
                "--deploy-mode",
                "cluster",
                *local[1 : -len(expected) - 1],
                entry_point,
                *expected,
            ]
            assert local[-len(expected) - 1] == str(spark_job.SCRIPT) and entry_point.endswith(".py")
        for key, value in spark_settings.SETTINGS.items():
            assert f"{key}={value}" in conf


@pytest.mark.parametrize("mode", ["serverless", "cluster"])
def test_corrections_run_on_their_stages_jobs_as_the_spark_jobs_own_stage(
    mode: str, serverless: list[Registration], cluster: list[Registration]
) -> None:
    """A manual start's retract (on load's job role) and reprocess (on extract's) reach the entry module as
    `--stage retract|reprocess` with their options: the Spark job's own vector for them, not the stage's."""
    every = states(machine(serverless if mode == "serverless" else cluster))
    context = {"Execution": {"Name": "exec", "Id": "arn:exec", "RedriveCount": 0}, "State": {"RetryCount": 0}}
    corrections = {"retract": {"file": "orders/seq=3"}, "reprocess": {"from": "2024-04-01", "to": "2024-04-30"}}
    state = {"run_date": "2024-05-01", "input": corrections, "emr_cluster": {"ClusterId": "j-1"}}
    for name, options in corrections.items():
        sent = parameters(every[name.title()]["Parameters"], state, context)
        if mode == "serverless":
            arguments = sent["JobDriver"]["SparkSubmit"]["EntryPointArguments"]
        else:
            command = sent["Step"]["HadoopJarStep"]["Args"]
            arguments = command[next(i for i, part in enumerate(command) if part.endswith(".py")) + 1 :]
        result_uri = arguments[arguments.index("--result-uri") + 1]
        assert arguments == spark_job.job_arguments(name, "2024-05-01", result_uri=result_uri, correction=options)


def test_entry_point_arguments_are_the_stage_call_as_an_option() -> None:
    call = StageCall(Stage.VALIDATE, per_source=False, max_quarantine_rate=0.05, result_uri="'s3://b/r.json'")
    rendered = evaluate(f"States.Array({', '.join(emr.entry_point_arguments(call))})", {"run_date": "2024-05-01"}, {})
    assert rendered == [
        "--stage",
        "validate",
        "--run-date",
        "2024-05-01",
        "--result-uri",
        "s3://b/r.json",
        "--max-quarantine-rate",
        "0.05",
    ]


def test_code_is_uploaded_under_content_keys(serverless: list[Registration]) -> None:
    objects = {
        r.name.removeprefix(f"{COMPONENT}-"): r.inputs
        for r in serverless
        if r.type == "aws:s3/bucketObjectv2:BucketObjectv2"
    }
    assert set(objects) == {"entry-point", "package", "environment"}
    assert objects["package"]["key"] == f"emr/code/etl_jobs-{packaging.function_package().key}.zip"
    assert (
        objects["environment"]["key"]
        == f"emr/env/python-arm64-{packaging.spark_env_key(emr.LambdaArchitecture.ARM64)}.tar.gz"
    )
    assert all(o["serverSideEncryption"] == "aws:kms" and o["kmsKeyId"] == KEY for o in objects.values())
    submit = states(machine(serverless))["Load"]["Parameters"]["JobDriver"]["SparkSubmit"]
    assert (
        f"spark.archives=s3://etl-platform-lake-artifacts-0000000/{objects['environment']['key']}#environment"
        in submit["SparkSubmitParameters"]
    )
    assert submit["EntryPoint"] == f"s3://etl-platform-lake-artifacts-0000000/{objects['entry-point']['key']}"


# ---------------------------------------------------------------------------------------------------------------------
# In the program
# ---------------------------------------------------------------------------------------------------------------------


def test_stepfunctions_runs_a_stage_on_emr_and_endpoints_follow_the_mode(tmp_path: Path) -> None:
    config = {
        "aws:region": "eu-west-1",
        "etl-platform:environment": "dev",
        "etl-platform:architectures": ["emr", "stepfunctions"],
        "etl-platform:emr": {"mode": "cluster"},
        "etl-platform:stepfunctions": {"runners": {"transform": "emr", "load": "emr"}},
    }
    evaluation = evaluate_config(tmp_path, config)
    (orchestrator,) = [
        r for r in evaluation.registrations if r.type == MACHINE and r.name == "etl-platform-stepfunctions-machine"
    ]
    top = definition_of(orchestrator)["States"]
    assert top["Load"]["Resource"].endswith("addStep.sync") and top["Validate"]["Resource"].endswith("lambda:invoke")
    # One cluster per run, created once however many stages run on it.
    assert [n for n in top if n.startswith("EmrCreateCluster")] == ["EmrCreateCluster"]
    endpoints = {
        r.inputs["serviceName"].removeprefix("com.amazonaws.eu-west-1.")
        for r in evaluation.registrations
        if r.type == "aws:ec2/vpcEndpoint:VpcEndpoint" and r.inputs["vpcEndpointType"] == "Interface"
    }
    assert endpoints == {"elasticmapreduce", "kms"}


def test_staging_mirrors_prods_emr_mode() -> None:
    import yaml

    from tests.support.stacks import ROOT

    files = {name: yaml.safe_load((ROOT / f"Pulumi.{name}.yaml").read_text())["config"] for name in ("staging", "prod")}
    assert files["staging"]["etl-platform:emr"]["mode"] == files["prod"]["etl-platform:emr"]["mode"]
    assert yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]["etl-platform:emr"]["mode"] == "serverless"
