"""The database architecture built from its args under mocks: the Aurora cluster per profile (scaling to zero in dev,
a floor and a reader in another AZ in prod), what keeps its data safe (CONTROLS rows 33-39, 64), its alarms, its
stage runner (the command functions in the private subnets with their own security group, the environment the SQL
engine reads, their roles from the storage-access declaration plus `rds-db:connect` or the master secret) and the
pipeline it renders (the migrations before the transform, `--engine postgres` on every stage it runs).

What the mocks cannot show, Aurora only: that the instance really pauses and resumes, that Aurora accepts the runner
user's IAM token and the RDS CA bundle verifies its certificate, that Lambda attaches its interfaces with the scoped
EC2 permissions, RDS rotating the master secret, and rds.force_ssl refusing a plain connection.
docs/architectures/database.md says how each is checked on a deployed stack
(tests/integration/test_database_deployed.py)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from components import asl
from components.architectures import database
from components.architectures.base import ArchitectureArgs
from components.architectures.database import (
    MIGRATE_STATE,
    Database,
    DatabaseSettings,
    DatabaseStages,
    auto_pause_supported,
    max_connections,
)
from components.functions import LambdaStages, lambda_stage_budget
from components.pipelines import PipelineSpec, ResultStore, pipeline_definition
from components.policies import ACTIONS_REQUIRING_STAR
from components.settings import ConfigError, Environment
from components.stages import Stage
from etl_jobs import database as sql_engine
from etl_jobs.handlers import command
from etlctl.mocks import PlatformMocks, Registration
from etlctl.offline import ProgramError
from tests.support.components import REGION, foundation_refs, register
from tests.support.definitions import MACHINE, arn_of, definition_of, parameters, statelint, states
from tests.support.resources import named, of_type, policy, statements
from tests.support.stacks import evaluate_config, evaluated

NAME = "etl-platform-database"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/test"
CLUSTER = "aws:rds/cluster:Cluster"
INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
FUNCTION = "aws:lambda/function:Function"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def build(
    environment: Environment = Environment.DEV, settings: dict[str, Any] | None = None, *, preview: bool = False
) -> list[Registration]:
    def program() -> None:
        Database(
            NAME,
            ArchitectureArgs(
                settings=DatabaseSettings.model_validate(settings or {}), foundation=foundation_refs(environment)
            ),
        )

    return register(program, preview=preview)


_built: dict[Environment, list[Registration]] = {}


def built(environment: Environment) -> list[Registration]:
    if environment not in _built:
        _built[environment] = build(environment)
    return _built[environment]


def one(registrations: list[Registration], token: str, suffix: str = "") -> Registration:
    (found,) = [r for r in registrations if r.type == token and r.name.endswith(suffix)]
    return found


def every(registrations: list[Registration], token: str) -> list[Registration]:
    return [r for r in registrations if r.type == token]


def role_policy(registrations: list[Registration], label: str) -> dict[str, Any]:
    return policy(one(registrations, "aws:iam/rolePolicy:RolePolicy", f"database-{label}-policy").inputs["policy"])


def actions_on(document: dict[str, Any], prefix: str) -> dict[str, set[str]]:
    """Action -> resources of the Allow statements whose actions start with `prefix`."""
    found: dict[str, set[str]] = {}
    for statement in statements(document):
        for action in statement["Action"]:
            if action.startswith(prefix):
                found.setdefault(action, set()).update(statement["Resource"])
    return found


# ---------------------------------------------------------------------------------------------------------------------
# The cluster per profile
# ---------------------------------------------------------------------------------------------------------------------


def test_preview_and_update_register_the_same_resources() -> None:
    def census(registrations: list[Registration]) -> Counter[tuple[str, str, bool]]:
        return Counter((r.type, r.name, r.protect) for r in registrations)

    for environment in (Environment.DEV, Environment.PROD):
        assert census(build(environment, preview=True)) == census(built(environment))


def test_dev_scales_to_zero_and_pauses_on_a_version_that_can() -> None:
    cluster = one(built(Environment.DEV), CLUSTER).inputs
    assert cluster["engine"] == "aurora-postgresql" and cluster["engineMode"] == "provisioned"
    assert cluster["serverlessv2ScalingConfiguration"] == {
        "minCapacity": 0,
        "maxCapacity": 4,
        "secondsUntilAutoPause": 300,
    }
    assert auto_pause_supported(cluster["engineVersion"])
    (writer,) = every(built(Environment.DEV), INSTANCE)
    assert writer.inputs["instanceClass"] == "db.serverless"


def test_prod_keeps_a_floor_and_a_reader_in_another_az_that_fails_over_with_the_writer() -> None:
    registrations = built(Environment.PROD)
    scaling = one(registrations, CLUSTER).inputs["serverlessv2ScalingConfiguration"]
    assert scaling == {"minCapacity": 0.5, "maxCapacity": 16}, "a floor never pauses: no auto-pause setting"
    writer, reader = one(registrations, INSTANCE, "-writer"), one(registrations, INSTANCE, "-reader-1")
    assert writer.inputs["availabilityZone"] != reader.inputs["availabilityZone"]
    assert {writer.inputs["availabilityZone"], reader.inputs["availabilityZone"]} <= {f"{REGION}a", f"{REGION}b"}
    # Tier 0 is the writer; tier 1 scales with it (and pauses with it) so a failover lands on a warm instance.
    assert (writer.inputs["promotionTier"], reader.inputs["promotionTier"]) == (0, 1)
    assert writer.urn in reader.dependencies, "the first instance of a cluster is its writer"


def test_settings_override_the_profile() -> None:
    cluster = one(build(Environment.DEV, {"minCapacity": 1, "maxCapacity": 2, "readers": 1}), CLUSTER)
    assert cluster.inputs["serverlessv2ScalingConfiguration"] == {"minCapacity": 1, "maxCapacity": 2}
    registrations = build(Environment.PROD, {"minCapacity": 0, "secondsUntilAutoPause": 900, "readers": 2})
    assert one(registrations, CLUSTER).inputs["serverlessv2ScalingConfiguration"]["secondsUntilAutoPause"] == 900
    zones = [r.inputs["availabilityZone"] for r in every(registrations, INSTANCE)]
    # Two private subnets: the second reader shares the writer's AZ, the first does not.
    assert sorted(zones) == sorted([f"{REGION}a", f"{REGION}b", f"{REGION}a"])


def test_storage_secret_and_insights_are_encrypted_with_the_stack_key_and_no_password_is_in_the_program() -> None:
    for environment in (Environment.DEV, Environment.PROD):
        registrations = built(environment)
        cluster = one(registrations, CLUSTER).inputs
        assert (cluster["storageEncrypted"], cluster["kmsKeyId"]) == (True, KEY)
        assert (cluster["manageMasterUserPassword"], cluster["masterUserSecretKmsKeyId"]) == (True, KEY)
        assert "masterPassword" not in cluster and "masterPasswordWo" not in cluster
        assert cluster["masterUsername"] not in ("postgres", "admin", "root")
        assert cluster["iamDatabaseAuthenticationEnabled"] is True and cluster["enableHttpEndpoint"] is False
        for instance in every(registrations, INSTANCE):
            assert instance.inputs["publiclyAccessible"] is False
            assert (instance.inputs["performanceInsightsEnabled"], instance.inputs["performanceInsightsKmsKeyId"]) == (
                True,
                KEY,
            )


def test_tls_is_forced_by_the_parameter_group_the_cluster_uses() -> None:
    registrations = built(Environment.DEV)
    group = one(registrations, "aws:rds/clusterParameterGroup:ClusterParameterGroup")
    cluster = one(registrations, CLUSTER)
    assert group.inputs["family"] == "aurora-postgresql" + cluster.inputs["engineVersion"].split(".")[0]
    values = {p["name"]: p["value"] for p in group.inputs["parameters"]}
    assert values["rds.force_ssl"] == "1" and values["ssl_min_protocol_version"] == "TLSv1.2"
    assert cluster.inputs["dbClusterParameterGroupName"] == group.outputs["name"]


def test_logs_go_to_a_group_made_first_with_the_stacks_retention_and_key() -> None:
    refs = foundation_refs(Environment.PROD)
    registrations = built(Environment.PROD)
    cluster = one(registrations, CLUSTER)
    logs = one(registrations, "aws:cloudwatch/logGroup:LogGroup", "database-postgresql-logs")
    assert cluster.inputs["enabledCloudwatchLogsExports"] == ["postgresql"]
    # The name RDS exports to: /aws/rds/cluster/<cluster identifier>/<log type>.
    assert logs.inputs["name"] == f"/aws/rds/cluster/{cluster.inputs['clusterIdentifier']}/postgresql"
    assert (logs.inputs["retentionInDays"], logs.inputs["kmsKeyId"]) == (refs.log_retention_days, KEY)
    assert logs.urn in cluster.dependencies
    assert logs.protect and logs.retain_on_delete


def test_prod_protects_the_data_and_dev_is_disposable() -> None:
    prod = one(built(Environment.PROD), CLUSTER)
    assert prod.protect and prod.retain_on_delete
    assert prod.inputs["deletionProtection"] is True and prod.inputs["skipFinalSnapshot"] is False
    assert prod.inputs["finalSnapshotIdentifier"] == f"{prod.inputs['clusterIdentifier']}-final"
    assert (prod.inputs["backupRetentionPeriod"], prod.inputs["deleteAutomatedBackups"]) == (14, False)
    assert prod.inputs["applyImmediately"] is False, "prod changes wait for the maintenance window"
    assert all(instance.protect for instance in every(built(Environment.PROD), INSTANCE))
    dev = one(built(Environment.DEV), CLUSTER)
    assert not dev.protect and dev.inputs["deletionProtection"] is False
    assert dev.inputs["skipFinalSnapshot"] is True and "finalSnapshotIdentifier" not in dev.inputs
    assert dev.inputs["backupRetentionPeriod"] == 1 and dev.inputs["deleteAutomatedBackups"] is True


def ids_of(registrations: list[Registration], token: str, suffix: str) -> str:
    """The id the mocks give a resource (what other resources' inputs refer to)."""
    found = one(registrations, token, suffix)
    return PlatformMocks(region=REGION)._created(found.type, found.name, found.inputs)[0]


SG = "aws:ec2/securityGroup:SecurityGroup"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def test_the_private_subnets_hold_it_and_only_the_runners_group_reaches_it_on_5432() -> None:
    registrations = built(Environment.DEV)
    subnets = one(registrations, "aws:rds/subnetGroup:SubnetGroup")
    assert subnets.inputs["subnetIds"] == ["subnet-0a", "subnet-0b"]
    cluster_group, runner_group = ids_of(registrations, SG, "database-sg"), ids_of(registrations, SG, "runner-sg")
    assert one(registrations, CLUSTER).inputs["vpcSecurityGroupIds"] == [cluster_group]
    for group in every(registrations, SG):
        assert "ingress" not in group.inputs and "egress" not in group.inputs, "standalone rules only"
    (ingress,) = every(registrations, INGRESS)
    assert (ingress.inputs["securityGroupId"], ingress.inputs["referencedSecurityGroupId"]) == (
        cluster_group,
        runner_group,
    )
    assert (ingress.inputs["ipProtocol"], ingress.inputs["fromPort"], ingress.inputs["toPort"]) == ("tcp", 5432, 5432)
    assert "runner" in one(registrations, SG, "database-sg").inputs["description"]
    # The runner's group goes out to the cluster on 5432 and to the S3 and interface endpoints on 443; nothing else.
    egress = every(registrations, EGRESS)
    assert {rule.inputs["securityGroupId"] for rule in egress} == {runner_group}, "the cluster starts no connection"
    reached = {
        (rule.inputs["fromPort"], rule.inputs["toPort"], rule.inputs.get("referencedSecurityGroupId"),
         rule.inputs.get("prefixListId"))
        for rule in egress
    }  # fmt: skip
    assert reached == {
        (5432, 5432, cluster_group, None),
        (443, 443, None, "pl-6da54004"),
        (443, 443, "sg-0endpoints", None),
    }
    for rule in egress:
        assert rule.inputs["ipProtocol"] == "tcp" and rule.inputs["description"]
        assert "cidrIpv4" not in rule.inputs and "cidrIpv6" not in rule.inputs, "no address range: no internet"


def test_the_functions_run_in_the_private_subnets_with_the_runners_group_and_may_manage_only_their_interfaces() -> None:
    registrations = built(Environment.DEV)
    runner_group = ids_of(registrations, SG, "runner-sg")
    account = "123456789012"
    interfaces = f"arn:aws:ec2:{REGION}:{account}:network-interface/*"
    for label in ("migrate", "transform", "validate"):
        function = one(registrations, FUNCTION, f"{label}-function")
        assert function.inputs["vpcConfig"]["subnetIds"] == ["subnet-0a", "subnet-0b"]
        assert function.inputs["vpcConfig"]["securityGroupIds"] == [runner_group]
        document = role_policy(registrations, label)
        assert actions_on(document, "ec2:") == {
            "ec2:CreateNetworkInterface": {
                interfaces,
                f"arn:aws:ec2:{REGION}:{account}:subnet/subnet-0a",
                f"arn:aws:ec2:{REGION}:{account}:subnet/subnet-0b",
                f"arn:aws:ec2:{REGION}:{account}:security-group/{runner_group}",
            },
            "ec2:DeleteNetworkInterface": {interfaces},
            "ec2:AssignPrivateIpAddresses": {interfaces},
            "ec2:UnassignPrivateIpAddresses": {interfaces},
            "ec2:DescribeNetworkInterfaces": {"*"},
            "ec2:DescribeSubnets": {"*"},
        }
        for statement in statements(document):
            assert not any("*" in action for action in statement["Action"])
            if "*" in statement["Resource"]:
                assert set(statement["Action"]) <= set(ACTIONS_REQUIRING_STAR), statement


def test_secrets_manager_is_reached_through_an_endpoint_in_staging_and_prod_and_through_devs_nat() -> None:
    # Without NAT the endpoint is the only way (the foundation makes an architecture's endpoints there).
    assert Database.endpoints(DatabaseSettings()) == ("secretsmanager",)
    for stack, endpoint in (("dev", False), ("staging", True), ("prod", True)):  # all three have NAT
        evaluation = evaluated(stack)
        endpoints = {
            r.inputs["serviceName"].rsplit(".", 1)[-1]: r
            for r in of_type(evaluation, "aws:ec2/vpcEndpoint:VpcEndpoint")
        }
        assert endpoints["s3"].inputs["vpcEndpointType"] == "Gateway", stack
        egress = {
            r.name.rsplit("-runner-to-", 1)[1]: r.inputs
            for r in of_type(evaluation, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
            if "-database-runner-to-" in r.name
        }
        if endpoint:
            assert endpoints["secretsmanager"].inputs["vpcEndpointType"] == "Interface", stack
            assert endpoints["secretsmanager"].inputs["privateDnsEnabled"] is True, stack
            assert set(egress) == {"aurora", "s3", "endpoints"}, stack
        else:
            # dev's NAT instance carries migrate's one call: the endpoint would cost $7.30 a month per AZ.
            assert "secretsmanager" not in endpoints
            assert set(egress) == {"aurora", "s3", "secrets-via-nat"}
            assert (egress["secrets-via-nat"]["cidrIpv4"], egress["secrets-via-nat"]["fromPort"]) == ("0.0.0.0/0", 443)


# ---------------------------------------------------------------------------------------------------------------------
# Alarms and widgets
# ---------------------------------------------------------------------------------------------------------------------


def test_alarms_watch_capacity_memory_connections_deadlocks_and_lag_and_reach_the_alerts_topic() -> None:
    def alarms(registrations: list[Registration]) -> dict[str, dict[str, Any]]:
        return {
            r.inputs["metricName"]: r.inputs for r in every(registrations, ALARM) if r.inputs["namespace"] == "AWS/RDS"
        }

    dev, prod = alarms(built(Environment.DEV)), alarms(built(Environment.PROD))
    expected = {"CPUUtilization", "ACUUtilization", "ServerlessDatabaseCapacity", "FreeableMemory",
                "DatabaseConnections", "Deadlocks"}  # fmt: skip
    # dev keeps the one that says to raise maxCapacity; the rest explain what its pipeline's alarms already report.
    assert set(dev) == {"ACUUtilization"}
    assert set(prod) == expected | {"AuroraReplicaLagMaximum"}
    cluster = one(built(Environment.PROD), CLUSTER).inputs["clusterIdentifier"]
    for alarm in prod.values():
        assert alarm["dimensions"] == {"DBClusterIdentifier": cluster}
        assert alarm["alarmActions"] == [f"arn:aws:sns:{REGION}:123456789012:alerts"]
    assert prod["ServerlessDatabaseCapacity"]["threshold"] == 16, "at the ceiling"
    # Freeable memory of Serverless v2 is what would be free at the maximum: 10% of 16 ACU x 2 GiB.
    assert prod["FreeableMemory"]["threshold"] == pytest.approx(16 * 2 * 1024**3 * 0.10, rel=1e-6)
    assert prod["DatabaseConnections"]["threshold"] == int(max_connections(16) * 0.8)
    # A failed run on this runner is a function error: outside dev each function has its Errors alarm (in dev the
    # pipeline's failed-run alarm and alert report it).
    errors = {
        env: [r.name for r in every(built(env), ALARM) if r.inputs["metricName"] == "Errors"] for env in Environment
    }
    assert sorted(errors[Environment.PROD]) == [
        f"{NAME}-{label}-errors" for label in ("migrate", "transform", "validate")
    ]
    assert errors[Environment.DEV] == []


def test_max_connections_follows_aurora_postgresqls_formula_and_its_cap() -> None:
    assert max_connections(1) == 225  # 2 GiB / 9531392 bytes
    assert max_connections(4) == 901
    assert max_connections(256) == 5000


# ---------------------------------------------------------------------------------------------------------------------
# The stage runner: functions, roles
# ---------------------------------------------------------------------------------------------------------------------


def test_the_functions_run_the_command_handler_on_the_sql_engine_and_find_the_database_in_their_environment(
    tmp_path: Path,
) -> None:
    registrations = built(Environment.DEV)
    cluster = one(registrations, CLUSTER)
    secret = cluster.outputs["masterUserSecrets"][0]["secretArn"]
    functions = every(registrations, FUNCTION)
    assert sorted(f.name for f in functions) == [f"{NAME}-{x}-function" for x in ("migrate", "transform", "validate")]
    bundle = tmp_path / "global-bundle.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    layers = [
        one(registrations, "aws:lambda/layerVersion:LayerVersion", suffix)
        for suffix in ("database-layer", "database-postgres-layer")
    ]
    assert "postgres" in layers[1].inputs["layerName"]
    connects = {}
    for function in functions:
        assert function.inputs["handler"] == "etl_jobs.handlers.command.handler"
        variables = function.inputs["environment"]["variables"]
        assert variables["ETL_ENGINE"] == "postgres"
        assert not [name for name in variables if name.startswith("ETL_DB_")], "no Data API settings"
        assert variables[sql_engine.CA_BUNDLE_ENV] == database.CA_BUNDLE_PATH
        # psycopg and the bundle come in the postgres layer, beside the main (jobs) layer.
        assert function.inputs["layers"] == [arn_of(layer) for layer in layers], function.name
        # What the engine makes of it, with the region Lambda sets and the bundle where the layer puts it.
        found = sql_engine.from_environment(
            environ={**variables, sql_engine.CA_BUNDLE_ENV: str(bundle), "AWS_REGION": REGION}
        )
        assert isinstance(found, sql_engine.AuroraDatabase)
        assert (found.host, found.port, found.dbname) == (cluster.outputs["endpoint"], 5432, "etl")
        connects[function.name.removeprefix(f"{NAME}-").removesuffix("-function")] = (found.user, found.secret_arn)
    # The stages log in as the runner user with a token; migrate as the master user with the secret.
    assert connects == {
        "transform": (database.RUNNER_USER, None),
        "validate": (database.RUNNER_USER, None),
        "migrate": (None, secret),
    }
    assert one(registrations, FUNCTION, "migrate-function").inputs["timeout"] == database.MIGRATE_TIMEOUT_SECONDS
    assert one(registrations, FUNCTION, "transform-function").inputs["timeout"] == 900
    assert one(registrations, CLUSTER).inputs["enableHttpEndpoint"] is False, "nothing uses the Data API"


def test_the_stages_may_connect_as_the_runner_user_and_only_migrate_may_read_the_master_secret() -> None:
    registrations = built(Environment.DEV)
    cluster = one(registrations, CLUSTER)
    secret = cluster.outputs["masterUserSecrets"][0]["secretArn"]
    runner = (
        f"arn:aws:rds-db:{REGION}:123456789012:dbuser:{cluster.outputs['clusterResourceId']}/{database.RUNNER_USER}"
    )
    for label in ("transform", "validate"):
        document = role_policy(registrations, label)
        assert actions_on(document, "rds-db:") == {"rds-db:connect": {runner}}
        assert actions_on(document, "secretsmanager:") == {}
        assert actions_on(document, "rds-data:") == {}
    migrate = role_policy(registrations, "migrate")
    assert actions_on(migrate, "rds-db:") == {} and actions_on(migrate, "rds-data:") == {}
    assert actions_on(migrate, "secretsmanager:") == {"secretsmanager:GetSecretValue": {secret}}
    through = [s for s in statements(migrate) if s.get("Sid") == "SecretKeyThroughSecretsManager"]
    assert through == [
        {
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": [KEY],
            "Sid": "SecretKeyThroughSecretsManager",
            "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}},
        }
    ]


def test_the_lake_grants_are_the_declarations_and_the_migrations_have_none() -> None:
    registrations = built(Environment.DEV)
    transform, validate = role_policy(registrations, "transform"), role_policy(registrations, "validate")
    migrate = role_policy(registrations, "migrate")
    assert actions_on(migrate, "s3:") == {}
    staged = "arn:aws:s3:::etl-platform-lake-staged-0000000"
    raw = "arn:aws:s3:::etl-platform-lake-raw-0000000"
    # transform reads raw copies and writes staged deliveries; validate only reads and writes staged ones.
    assert f"{raw}/deliveries/*" in actions_on(transform, "s3:GetObject")["s3:GetObject"]
    assert f"{staged}/deliveries/*" in actions_on(transform, "s3:PutObject")["s3:PutObject"]
    assert not any(r.startswith(raw) for r in actions_on(validate, "s3:GetObject")["s3:GetObject"])
    for document in (transform, validate):
        touched = {r for resources in actions_on(document, "s3:").values() for r in resources}
        assert not any("curated" in r or "artifacts" in r for r in touched), "no curated, no result objects"


def test_the_retried_errors_are_the_ones_a_retry_may_fix() -> None:
    """The Tasks retry the handler's infrastructure error (a database resuming, throttling), not a usage, data or
    permission error, which would fail the same way again."""
    retried = set(database.RETRIED_ERRORS)
    assert command.CommandInfrastructureError.__name__ in retried
    for error in (command.CommandUsageError, command.CommandDataError, command.CommandPermissionError):
        assert error.__name__ not in retried
    for retrier in [*database.STAGE_RETRY, database.RESUME_RETRY]:
        assert asl.ALL_ERRORS not in retrier.error_equals and asl.TASK_FAILED not in retrier.error_equals


# ---------------------------------------------------------------------------------------------------------------------
# The pipeline it renders (pure: bound runners)
# ---------------------------------------------------------------------------------------------------------------------

FUNCTIONS = {
    stage: f"arn:aws:lambda:{REGION}:123456789012:function:db-{stage.value}"
    for stage in (Stage.TRANSFORM, Stage.VALIDATE)
}
MIGRATE = f"arn:aws:lambda:{REGION}:123456789012:function:db-migrate"
SPEC = PipelineSpec(name="etl-test", sources=("orders",), max_quarantine_rate=0.05, region=REGION)


def definition(runner_class: type[DatabaseStages] = DatabaseStages) -> asl.StateMachine:
    runner = runner_class("database", FUNCTIONS, MIGRATE, {s: DatabaseSettings().budget() for s in FUNCTIONS})
    lambdas = LambdaStages(
        "serverless",
        {s: f"arn:aws:lambda:{REGION}:123456789012:function:sl-{s.value}" for s in Stage},
        {s: lambda_stage_budget(300) for s in Stage},
    )
    runners = {Stage.EXTRACT: lambdas, Stage.TRANSFORM: runner, Stage.VALIDATE: runner, Stage.LOAD: lambdas}
    return pipeline_definition(
        SPEC, runners, alerts_topic_arn=f"arn:aws:sns:{REGION}:123456789012:alerts", results=ResultStore(bucket="a")
    )


def test_the_migrations_run_once_before_the_sources_and_resume_a_paused_database() -> None:
    machine = definition()
    rendered = states(machine.to_dict())
    migrate = rendered[MIGRATE_STATE]
    assert migrate["Parameters"] == {"FunctionName": MIGRATE, "Payload": {"argv": ["migrate", "--engine", "postgres"]}}
    assert migrate["Next"] == "Sources", "the runner serves two stages; its step is rendered once, before the Map"
    assert migrate["ResultPath"] == "$.database_migrations", "the run's input passes through"
    # Waits through a resume: 15 + 30 + 60 + 60 s between the attempts.
    (retrier,) = migrate["Retry"]
    assert retrier["IntervalSeconds"] == 15 and retrier["MaxAttempts"] == 4
    assert "CommandInfrastructureError" in retrier["ErrorEquals"]
    # After the input checks and the corrections (which run on the serverless stages), first of all: the runner has
    # no setup step, and extract has no before-step.
    assert [rule["Next"] for rule in rendered["IsDate"]["Choices"]] == ["Corrections"]
    assert rendered["Corrections"]["Default"] == MIGRATE_STATE


def test_the_stages_send_their_command_line_on_the_sql_engine() -> None:
    rendered = states(definition().to_dict())
    sent = {
        stage: parameters(rendered[stage]["Parameters"], {"run_date": "2024-05-01", "source": "orders"}, {})["Payload"]
        for stage in ("Transform", "Validate")
    }
    assert sent["Transform"] == {
        "argv": ["transform", "--run-date", "2024-05-01", "--source", "orders", "--engine", "postgres"]
    }
    assert sent["Validate"] == {
        "argv": ["validate", "--run-date", "2024-05-01", "--max-quarantine-rate", "0.05", "--engine", "postgres"]
    }
    # Each argv is a command line the job accepts (the engine itself is the job side's: any registered name parses).
    from etl_jobs.cli import parser

    for payload in sent.values():
        assert parser().parse_args(payload["argv"]).engine == "postgres"


def test_the_execution_timeout_counts_the_migrations_once(tmp_path: Path) -> None:
    class Uncounted(DatabaseStages):
        def hook_seconds(self) -> int:
            return 0

    machine = definition()
    counted, uncounted = machine.timeout_seconds or 0, definition(Uncounted).timeout_seconds or 0
    assert counted - uncounted == database.MIGRATE_BUDGET.worst_case_seconds()
    # Each stage waits for its function's timeout plus the invoke margin, retried as the budget says.
    assert DatabaseSettings().budget().timeout_seconds == 900 + database.INVOKE_MARGIN_SECONDS
    result = statelint(machine.to_json(), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------------------------------
# Settings: defaults per profile and every mistake with its message
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"minCapacity": 4, "maxCapacity": 2}, "minCapacity 4.0 is above maxCapacity 2.0"),
        ({"minCapacity": 0.25}, "multiple of 0.5"),
        ({"minCapacity": 0.5, "secondsUntilAutoPause": 600}, "secondsUntilAutoPause applies only with minCapacity 0"),
        ({"minCapacity": 0, "engineVersion": "16.2"}, "16.2 does not (use 16.8, or a minCapacity of 0.5)"),
        ({"engineVersion": "12.9"}, "String should match pattern"),
        ({"databaseName": "postgres"}, "'postgres' is reserved by PostgreSQL or RDS"),
        ({"masterUsername": "admin"}, "'admin' is a default or reserved user name"),
        ({"performanceInsightsRetentionDays": 30}, "30 is not a Performance Insights retention"),
        ({"readers": 16}, "less than or equal to 15"),
        ({"secondsUntilAutoPause": 60}, "greater than or equal to 300"),
    ],
)
def test_bad_settings_are_refused_with_what_would_be_right(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        DatabaseSettings.model_validate(settings)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("environment", "settings", "message"),
    [
        (Environment.PROD, {"readers": 0}, "etl-platform:database.readers: prod needs a reader in another AZ"),
        (Environment.STAGING, {"backupRetentionDays": 3}, "staging keeps at least 7 days (CONTROLS row 34)"),
        (
            Environment.PROD,
            {"secondsUntilAutoPause": 600},
            "the prod profile keeps a floor of 0.5 ACU, so nothing pauses",
        ),
        (Environment.DEV, {"engineVersion": "15.4"}, "15.4 cannot scale to 0 ACU, which the dev profile does"),
    ],
)
def test_what_only_the_profile_makes_wrong_is_refused_before_anything_registers(
    environment: Environment, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        build(environment, settings)
    assert message in str(caught.value)


def test_a_ceiling_set_alone_keeps_the_profiles_floor() -> None:
    scaling = one(build(Environment.PROD, {"maxCapacity": 1}), CLUSTER).inputs["serverlessv2ScalingConfiguration"]
    assert scaling == {"minCapacity": 0.5, "maxCapacity": 1}


def test_every_setting_that_costs_money_at_rest_says_what_it_costs() -> None:
    for key in ("min_capacity", "readers", "backup_retention_days", "master_username"):
        assert "$" in (DatabaseSettings.model_fields[key].description or ""), key


# ---------------------------------------------------------------------------------------------------------------------
# In the program: the orchestrator runs transform and validate here
# ---------------------------------------------------------------------------------------------------------------------

CONFIG: dict[str, object] = {
    "aws:region": REGION,
    "etl-platform:environment": "dev",
    "etl-platform:architectures": ["serverless", "database", "stepfunctions"],
    "etl-platform:stepfunctions": {
        "runners": {"extract": "serverless", "transform": "database", "validate": "database", "load": "serverless"}
    },
}


def test_the_orchestrator_invokes_its_functions_and_may_invoke_nothing_else_of_it(tmp_path: Path) -> None:
    evaluation = evaluate_config(tmp_path, CONFIG)
    (machine,) = of_type(evaluation, MACHINE)
    rendered = states(definition_of(machine))
    ours = {r.name.removeprefix(f"{NAME}-").removesuffix("-function"): arn_of(r)
            for r in of_type(evaluation, FUNCTION) if r.name.startswith(NAME)}  # fmt: skip
    assert rendered["Transform"]["Parameters"]["FunctionName"] == ours["transform"]
    assert rendered["Validate"]["Parameters"]["FunctionName"] == ours["validate"]
    assert rendered[MIGRATE_STATE]["Parameters"]["FunctionName"] == ours["migrate"]
    document = policy(named(evaluation, "stepfunctions-role-policy").inputs["policy"])
    invoked = {r for s in statements(document) if "lambda:InvokeFunction" in s["Action"] for r in s["Resource"]}
    assert {ours[label] for label in ours} <= invoked
    result = statelint(json.dumps(definition_of(machine)), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_runs_only_transform_and_validate(tmp_path: Path) -> None:
    wrong = {**CONFIG, "etl-platform:stepfunctions": {"runners": {"load": "database"}}}
    with pytest.raises(ProgramError) as caught:
        evaluate_config(tmp_path, wrong)
    assert "etl-platform:stepfunctions.runners.load: 'database' cannot run the load stage" in str(caught.value)


def test_the_stack_files_run_transform_and_validate_in_it_and_staging_mirrors_prod_smaller() -> None:
    from components.settings import load_settings
    from etlctl.stack_config import load_stack_config
    from tests.support.stacks import ROOT

    loaded = {
        name: load_settings(load_stack_config(ROOT, name).values, project="etl-platform", stack=name)
        for name in ("dev", "staging", "prod")
    }
    for settings in loaded.values():
        runners = settings.architecture_settings("stepfunctions").runners.by_stage()
        assert (runners[Stage.TRANSFORM], runners[Stage.VALIDATE]) == ("database", "database")
    staging, prod = (
        loaded["staging"].architecture_settings("database"),
        loaded["prod"].architecture_settings("database"),
    )
    resolved = {
        name: loaded[name].architecture_settings("database").resolved(Environment(name), True) for name in loaded
    }
    assert resolved["dev"].pauses and resolved["staging"].pauses and not resolved["prod"].pauses
    assert resolved["staging"].max_capacity <= resolved["prod"].max_capacity
    assert resolved["prod"].readers >= 1
    assert staging.engine_version == prod.engine_version, "staging runs prod's engine"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_stack_files_build_it(stack: str) -> None:
    evaluation = evaluated(stack)
    (cluster,) = of_type(evaluation, CLUSTER)
    assert cluster.inputs["clusterIdentifier"] == f"etl-platform-{stack}-db"
    assert len(of_type(evaluation, INSTANCE)) == (2 if stack == "prod" else 1)
