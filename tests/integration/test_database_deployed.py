"""The database of a deployed stack, checked against AWS itself: what only Aurora and Lambda can show.

Moto keeps RDS metadata and attaches no Lambda to a VPC, so the wiring the SQL engine depends on is checked here on a
real stack: the migration function, inside the VPC with the runner's security group, reaches the cluster on 5432,
reads the master secret through the Secrets Manager endpoint, verifies the server against the RDS CA bundle of its
postgres layer and applies the migrations (0002 creates the runner user); the functions are attached to the private
subnets with one security group; TLS is forced; the Data API is off; the scaling configuration is the one the program set (a provider
bug once left 0 <-> 0.5 changes unapplied); and the PostgreSQL logs land in the group the program made.

Skipped unless the Pulumi CLI is on PATH and `ETL_DEPLOYED_STACK` names a deployed stack that selects `database`
(`pulumi stack output` must work, and the environment must hold credentials for the stack's account that may invoke
its functions and describe the cluster, its parameter group and its log group). The stage functions' IAM login as the
runner user happens only when a stage has a delivery to compute, so it is checked by a pipeline run on the stack
(a landed file through the state machine) and, from a host inside the VPC, by the marked tests of
tests/jobs/test_postgres_transport.py (ETL_AURORA_TEST_HOST with ETL_DATABASE_USER=etl_runner).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest

from etl_jobs.engines.postgres_migrations import migrations
from tests.support.stacks import ROOT

STACK = os.environ.get("ETL_DEPLOYED_STACK", "")
pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(
        shutil.which("pulumi") is None or not STACK,
        reason="needs the Pulumi CLI and ETL_DEPLOYED_STACK naming a deployed stack with the database (and AWS "
        "credentials for its account): moto attaches no Lambda to a VPC and serves no Aurora",
    ),
]


@pytest.fixture(scope="module")
def outputs() -> dict[str, Any]:
    done = subprocess.run(
        ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", STACK],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    stack: dict[str, Any] = json.loads(done.stdout)
    if "database" not in stack:
        pytest.skip(f"stack {STACK} does not select the database architecture")
    found: dict[str, Any] = stack["database"]
    return found


def _region(arn: str) -> str:
    return arn.split(":")[3]


def invoke(outputs: dict[str, Any], label: str, argv: list[str]) -> dict[str, Any]:
    """Invoke one of the runner's functions as the state machine does; its result is the payload."""
    import boto3

    arn = outputs["functionArns"][label]
    client = boto3.client("lambda", region_name=_region(arn))
    response = client.invoke(FunctionName=arn, Payload=json.dumps({"argv": argv}).encode())
    payload: dict[str, Any] = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, payload
    return payload


def test_the_migration_function_reaches_the_cluster_from_the_vpc_and_brings_it_to_this_codes_version(
    outputs: dict[str, Any],
) -> None:
    # The first call may wait for a paused instance to resume (CONNECT_TIMEOUT_S); the state machine retries it.
    result = invoke(outputs, "migrate", ["migrate", "--engine", "postgres"])
    assert result["version"] == len(migrations())
    assert "0002_runner_role" in result["applied"] + result["already_applied"]


def test_the_functions_run_in_the_private_subnets_with_the_runners_group(outputs: dict[str, Any]) -> None:
    import boto3

    for arn in outputs["functionArns"].values():
        configuration = boto3.client("lambda", region_name=_region(arn)).get_function_configuration(FunctionName=arn)
        vpc = configuration["VpcConfig"]
        assert len(vpc["SubnetIds"]) >= 2 and len(vpc["SecurityGroupIds"]) == 1, arn
        assert configuration["State"] == "Active", configuration.get("StateReason")


def test_tls_is_forced(outputs: dict[str, Any]) -> None:
    import boto3

    rds = boto3.client("rds", region_name=_region(outputs["clusterArn"]))
    (cluster,) = rds.describe_db_clusters(DBClusterIdentifier=outputs["clusterIdentifier"])["DBClusters"]
    pages = rds.get_paginator("describe_db_cluster_parameters").paginate(
        DBClusterParameterGroupName=cluster["DBClusterParameterGroup"]
    )
    values = {p["ParameterName"]: p.get("ParameterValue") for page in pages for p in page["Parameters"]}
    assert values["rds.force_ssl"] == "1"


def test_the_scaling_configuration_is_the_one_the_program_set(outputs: dict[str, Any]) -> None:
    import boto3

    rds = boto3.client("rds", region_name=_region(outputs["clusterArn"]))
    (cluster,) = rds.describe_db_clusters(DBClusterIdentifier=outputs["clusterIdentifier"])["DBClusters"]
    actual = cluster["ServerlessV2ScalingConfiguration"]
    expected = outputs["scaling"]
    assert (actual["MinCapacity"], actual["MaxCapacity"]) == (expected["minCapacity"], expected["maxCapacity"])
    if expected["secondsUntilAutoPause"] is not None:
        assert actual["SecondsUntilAutoPause"] == expected["secondsUntilAutoPause"]
    assert cluster["HttpEndpointEnabled"] is False and cluster["IAMDatabaseAuthenticationEnabled"] is True


def test_the_logs_land_in_the_group_the_program_made(outputs: dict[str, Any]) -> None:
    import boto3

    logs = boto3.client("logs", region_name=_region(outputs["clusterArn"]))
    name = f"/aws/rds/cluster/{outputs['clusterIdentifier']}/postgresql"
    (group,) = [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
    assert group.get("retentionInDays") and group.get("kmsKeyId")
