"""The query layer: Athena in the foundation (workgroup, quarantine table, named queries, results lifecycle) and the
Redshift Serverless warehouse behind `warehouse.engine` with its load step after every pipeline's load.

Components are built from their args (`register`); the wiring into stacks and pipelines through evaluated stack
files: the checked-in ones (no warehouse, as dev must stay cheap) and `prod-warehouse` (prod with Redshift on).
What only AWS shows (the Data API running the SQL, Spectrum reading the catalog, the usage limit stopping queries,
Athena cancelling a scan at the cutoff) cannot run here: moto has no Redshift Serverless and canned Athena results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.foundation import athena, queries, warehouse
from components.foundation.athena import Athena, AthenaArgs
from components.foundation.warehouse import RedshiftWarehouse, WarehouseArgs
from components.settings import GIB, PROFILES, Environment, WarehouseSettings, resolve_warehouse
from components.stages import Stage
from etlctl.mocks import ACCOUNT_ID, Registration
from etlctl.offline import Evaluation
from tests.support.components import REGION, foundation_refs, one, register
from tests.support.config_cases import PROD_WAREHOUSE, evaluated_file
from tests.support.definitions import MACHINE, arn_of, definition_of, statelint
from tests.support.resources import named, of_type, policy, statements
from tests.support.stacks import STACKS, evaluated

KEY = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/test"
WORKGROUP = "aws:redshiftserverless/workgroup:Workgroup"
NAMESPACE = "aws:redshiftserverless/namespace:Namespace"


# ---------------------------------------------------------------------------------------------------------------------
# Athena
# ---------------------------------------------------------------------------------------------------------------------


def athena_args(**overrides: Any) -> AthenaArgs:
    refs = foundation_refs()
    values: dict[str, Any] = {
        "workgroup_name": "etl-platform-test",
        "lake": refs.lake,
        "key_arn": refs.key.arn,
        "account_id": refs.stack.account_id,
        "bytes_scanned_cutoff": 2 * GIB,
    }
    return AthenaArgs(**(values | overrides))


def build_athena(**overrides: Any) -> list[Registration]:
    return register(lambda: Athena("query", athena_args(**overrides)))


def test_the_workgroup_enforces_encrypted_results_a_cutoff_and_a_pinned_engine() -> None:
    workgroup = one(build_athena(), "aws:athena/workgroup:Workgroup")
    assert workgroup.inputs["name"] == "etl-platform-test" and workgroup.inputs["state"] == "ENABLED"
    configuration = workgroup.inputs["configuration"]
    assert configuration["enforceWorkgroupConfiguration"] is True
    assert configuration["publishCloudwatchMetricsEnabled"] is True
    assert configuration["bytesScannedCutoffPerQuery"] == 2 * GIB
    assert configuration["engineVersion"] == {"selectedEngineVersion": "Athena engine version 3"}
    results = configuration["resultConfiguration"]
    assert results["outputLocation"] == f"s3://etl-platform-lake-artifacts-0000000/{athena.RESULTS_PREFIX}"
    assert results["encryptionConfiguration"] == {"encryptionOption": "SSE_KMS", "kmsKeyArn": KEY}
    assert results["expectedBucketOwner"] == ACCOUNT_ID


def test_each_named_query_is_registered_in_the_workgroup_over_the_lake_database() -> None:
    registrations = build_athena()
    workgroup = one(registrations, "aws:athena/workgroup:Workgroup")
    saved = {r.inputs["name"]: r for r in registrations if r.type == "aws:athena/namedQuery:NamedQuery"}
    assert sorted(saved) == sorted(query.name for query in queries.NAMED_QUERIES)
    for query in queries.NAMED_QUERIES:
        registered = saved[query.name]
        assert registered.inputs["workgroup"] == workgroup.inputs["name"]
        assert registered.inputs["database"] == "etl_platform_test_curated"
        assert registered.inputs["query"] == (queries.SQL_DIR / query.file).read_text()


def test_the_quarantine_table_reads_the_quarantined_rows_as_parquet() -> None:
    table = next(r for r in build_athena() if r.type == "aws:glue/catalogTable:CatalogTable")
    assert table.inputs["name"] == queries.QUARANTINE_TABLE
    assert table.inputs["databaseName"] == "etl_platform_test_curated"
    descriptor = table.inputs["storageDescriptor"]
    assert descriptor["location"] == "s3://etl-platform-lake-quarantine-0000000/deliveries/"
    assert descriptor["serDeInfo"]["serializationLibrary"].endswith("ParquetHiveSerDe")
    assert [(c["name"], c["type"]) for c in descriptor["columns"]] == list(athena.QUARANTINE_COLUMNS)


def test_a_cutoff_below_athenas_minimum_is_refused() -> None:
    # The refs are Outputs: made inside the program, as the foundation would hand them over.
    with pytest.raises(ValueError, match="bytes_scanned_cutoff must be at least 10 MB"):
        register(lambda: athena_args(bytes_scanned_cutoff=1024))


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_has_the_workgroup_with_its_profiles_cutoff(stack: str) -> None:
    evaluation = evaluated(stack)
    workgroup = named(evaluation, "athena-workgroup")
    cutoff = PROFILES[Environment(evaluation.config.environment)].athena_cutoff_gb * GIB
    assert workgroup.inputs["configuration"]["bytesScannedCutoffPerQuery"] == cutoff
    assert workgroup.inputs["forceDestroy"] is (stack == "dev")


def test_query_results_expire_under_their_own_lifecycle_rule() -> None:
    rules = {r["id"]: r for r in named(evaluated("prod"), "lake-artifacts-lifecycle").inputs["rules"]}
    rule = rules["expire-athena-results"]
    assert rule["filter"] == {"prefix": athena.RESULTS_PREFIX}
    assert rule["expiration"] == {"days": 30}
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] <= 7
    assert rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] <= 7
    assert "expire-athena-results" not in {
        r["id"] for r in named(evaluated("prod"), "lake-curated-lifecycle").inputs["rules"]
    }


# ---------------------------------------------------------------------------------------------------------------------
# Redshift Serverless
# ---------------------------------------------------------------------------------------------------------------------

SUBNETS = ("subnet-0a", "subnet-0b", "subnet-0c")


def warehouse_args(environment: Environment = Environment.DEV, **overrides: Any) -> WarehouseArgs:
    refs = foundation_refs(environment)
    settings = WarehouseSettings.model_validate({"engine": "redshift"})
    values: dict[str, Any] = {
        "prefix": "etl-platform-test",
        "sizes": resolve_warehouse(settings, PROFILES[environment]),
        "key_arn": refs.key.arn,
        "account_id": refs.stack.account_id,
        "partition": refs.stack.partition,
        "region": REGION,
        "vpc_id": refs.network.vpc_id,
        "private_subnet_ids": [pulumi.Output.from_input(s) for s in SUBNETS],
        "curated": refs.lake.curated,
        "catalog_database": refs.lake.catalog_database,
    }
    return WarehouseArgs(**(values | overrides))


def build_warehouse(environment: Environment = Environment.DEV, **overrides: Any) -> list[Registration]:
    return register(lambda: RedshiftWarehouse("warehouse", warehouse_args(environment, **overrides)))


def test_the_namespace_uses_the_stack_key_and_a_managed_admin_password() -> None:
    registrations = build_warehouse()
    namespace = one(registrations, NAMESPACE)
    role = next(r for r in registrations if r.type == "aws:iam/role:Role")
    assert namespace.inputs["kmsKeyId"] == KEY
    assert namespace.inputs["manageAdminPassword"] is True
    assert namespace.inputs["adminPasswordSecretKmsKeyId"] == KEY
    assert "adminUserPassword" not in namespace.inputs
    assert namespace.inputs["adminUsername"] not in ("admin", "awsuser")
    assert namespace.inputs["dbName"] not in ("dev",)
    assert sorted(namespace.inputs["logExports"]) == ["connectionlog", "useractivitylog", "userlog"]
    assert namespace.inputs["defaultIamRoleArn"] == arn_of(role)
    assert namespace.inputs["iamRoles"] == [arn_of(role)]


def test_the_workgroup_is_small_private_and_routed_through_the_vpc() -> None:
    registrations = build_warehouse()
    workgroup = one(registrations, WORKGROUP)
    group = one(registrations, "aws:ec2/securityGroup:SecurityGroup")
    assert workgroup.inputs["baseCapacity"] == 8 and workgroup.inputs["maxCapacity"] == 8
    assert workgroup.inputs["enhancedVpcRouting"] is True
    assert workgroup.inputs["publiclyAccessible"] is False
    assert workgroup.inputs["subnetIds"] == list(SUBNETS)
    assert workgroup.inputs["securityGroupIds"] == [arn_of(group).rsplit("/", 1)[1]]
    assert workgroup.inputs["configParameters"] == [{"parameterKey": "require_ssl", "parameterValue": "true"}]
    assert not [r for r in registrations if r.type == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"]


@pytest.mark.parametrize(
    ("environment", "amount", "action"),
    [(Environment.DEV, 4, "deactivate"), (Environment.PROD, 96, "emit-metric")],
)
def test_the_usage_limit_follows_the_profile(environment: Environment, amount: int, action: str) -> None:
    registrations = build_warehouse(environment)
    limit = one(registrations, "aws:redshiftserverless/usageLimit:UsageLimit")
    assert limit.inputs["resourceArn"] == arn_of(one(registrations, WORKGROUP))
    assert limit.inputs["usageType"] == "serverless-compute"
    assert (limit.inputs["amount"], limit.inputs["period"], limit.inputs["breachAction"]) == (amount, "daily", action)


def test_the_copy_role_reads_only_curated_partitions_and_the_lake_database() -> None:
    registrations = build_warehouse()
    role = next(r for r in registrations if r.type == "aws:iam/role:Role")
    trust = policy(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "redshift.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT_ID}
    document = policy(one(registrations, "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    granted = {s.get("Sid"): s for s in statements(document)}
    curated = "arn:aws:s3:::etl-platform-lake-curated-0000000"
    assert granted["ReadCuratedPartitions"]["Resource"] == [f"{curated}/order_date=*"]
    assert granted["ListCuratedPartitions"]["Condition"] == {"StringLike": {"s3:prefix": ["order_date=*"]}}
    assert granted["StackKey"]["Action"] == ["kms:Decrypt"]
    glue = f"arn:aws:glue:{REGION}:{ACCOUNT_ID}"
    assert sorted(granted["ReadCatalogDatabase"]["Resource"]) == sorted(
        [f"{glue}:catalog", f"{glue}:database/etl_platform_test_curated", f"{glue}:table/etl_platform_test_curated/*"]
    )


def test_fewer_than_three_subnets_are_refused() -> None:
    subnets = [pulumi.Output.from_input(s) for s in SUBNETS[:2]]
    with pytest.raises(ValueError, match="needs subnets in at least 3 AZs, got 2"):
        warehouse_args(private_subnet_ids=subnets)


@pytest.mark.parametrize("stack", STACKS)
def test_no_checked_in_stack_runs_redshift(stack: str) -> None:
    """Redshift costs storage at rest and RPU-hours per load: dev must stay cheap, and no stack turns it on yet."""
    assert not [r for r in evaluated(stack).resources if r.type.startswith("aws:redshiftserverless/")]


# ---------------------------------------------------------------------------------------------------------------------
# The load step in every pipeline (prod with the warehouse on)
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prod_warehouse() -> Evaluation:
    return evaluated_file(PROD_WAREHOUSE)


def machines(evaluation: Evaluation) -> dict[str, Registration]:
    return {r.name: r for r in of_type(evaluation, MACHINE)}


def test_every_pipeline_loads_the_warehouse_after_its_load(prod_warehouse: Evaluation) -> None:
    found = machines(prod_warehouse)
    assert found, "prod has pipelines"
    for machine in found.values():
        states = definition_of(machine)["States"]
        after_load = states["ReadLoadResult"] if "ReadLoadResult" in states else states["Load"]
        # The load's successor leads to the schema statement, then the load statement, then success.
        chain, state = [], after_load["Next"]
        while state not in ("Succeeded", "WarehouseSchema"):
            chain.append(state)
            state = states[state].get("Next") or states[state]["Default"]
        assert state == "WarehouseSchema", f"{machine.name}: {chain}"
        assert states["WarehouseSchemaDone"]["Choices"][0]["Next"] == "WarehouseLoad"
        load = states["WarehouseLoad"]
        assert load["Resource"] == "arn:aws:states:::aws-sdk:redshiftdata:batchExecuteStatement"
        assert load["Parameters"]["Sqls"] == [
            queries.warehouse_statement(name, curated_partitions=curated_partitions(prod_warehouse))
            for name in queries.LOAD
        ]
        assert load["Parameters"]["WorkgroupName"] == "etl-platform-prod-warehouse"
        assert load["Parameters"]["SecretArn"].startswith(f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:")
        assert states["WarehouseLoadFailed"]["Next"] == "FailedStep"


def curated_partitions(evaluation: Evaluation) -> str:
    return f"s3://{arn_of(named(evaluation, 'lake-curated')).removeprefix('arn:aws:s3:::')}/order_date="


def test_the_warehouse_adds_its_worst_case_to_each_execution_timeout(prod_warehouse: Evaluation) -> None:
    without, with_warehouse = machines(evaluated("prod")), machines(prod_warehouse)
    for name, machine in with_warehouse.items():
        extra = definition_of(machine)["TimeoutSeconds"] - definition_of(without[name])["TimeoutSeconds"]
        assert extra == warehouse.HOOK_SECONDS


def test_the_state_machine_role_may_run_statements_on_this_workgroup_only(prod_warehouse: Evaluation) -> None:
    workgroup = arn_of(named(prod_warehouse, "warehouse-workgroup"))
    for machine in machines(prod_warehouse).values():
        role_policy = named(prod_warehouse, machine.name.removesuffix("-machine") + "-role-policy")
        granted = statements(policy(role_policy.inputs["policy"]))
        by_action = {action: s for s in granted for action in s["Action"]}
        assert by_action["redshift-data:BatchExecuteStatement"]["Resource"] == [workgroup]
        assert by_action["redshift-data:ExecuteStatement"]["Resource"] == [workgroup]
        describe = by_action["redshift-data:DescribeStatement"]
        assert describe["Resource"] == ["*"]
        assert describe["Condition"] == {"StringEquals": {"redshift-data:statement-owner-iam-userid": "${aws:userid}"}}
        (secret,) = by_action["secretsmanager:GetSecretValue"]["Resource"]
        assert secret.startswith(f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:redshift!")


def test_the_definitions_with_the_load_step_pass_statelint(prod_warehouse: Evaluation, tmp_path: Path) -> None:
    for machine in machines(prod_warehouse).values():
        result = statelint(machine.inputs["definition"], tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr


def test_a_poll_loop_ends_after_its_polls() -> None:
    """The Choice sends a statement still running after `MAX_POLLS` checks to the failed-step alert."""
    hook = warehouse.WarehouseLoad(
        workgroup_name="wg",
        workgroup_arn=f"arn:aws:redshift-serverless:{REGION}:{ACCOUNT_ID}:workgroup/x",
        database="analytics",
        secret_arn=f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:s",
        key_arn=KEY,
        curated_partitions="s3://curated/order_date=",
        catalog_database="db",
    )
    assert hook.after(Stage.EXTRACT, "Next") == ()
    done = next(s for s in hook.after(Stage.LOAD, "Next") if s.name == "WarehouseLoadDone")
    rendered: dict[str, Any] = json.loads(json.dumps([rule.to_dict() for rule in done.choices]))
    assert rendered[2] == {
        "Variable": "$.warehouse_load.Polls",
        "NumericGreaterThan": warehouse.MAX_POLLS - 1,
        "Next": "WarehouseLoadFailed",
    }
    assert done.default == "WarehouseLoadCount"
