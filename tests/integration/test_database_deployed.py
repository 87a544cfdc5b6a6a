"""The database of a deployed stack, checked against AWS itself: what only Aurora can show.

Moto's RDS and RDS Data API keep metadata and answer with canned results, so what matters about the database is
checked here on a real stack: the Data API answers with the master secret RDS manages (and resumes a paused instance),
TLS is forced, the scaling configuration is the one the program set (a provider bug once left 0 <-> 0.5 changes
unapplied), and the PostgreSQL logs land in the group the program made, with its retention and key.

Skipped unless the Pulumi CLI is on PATH and `ETL_DEPLOYED_STACK` names a deployed stack that selects `database`
(`pulumi stack output` must work, and the environment must hold credentials for the stack's account that may call
the Data API, read the secret and describe the cluster and its log group).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from typing import Any

import pytest

from tests.support.stacks import ROOT

STACK = os.environ.get("ETL_DEPLOYED_STACK", "")
pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(
        shutil.which("pulumi") is None or not STACK,
        reason="needs the Pulumi CLI and ETL_DEPLOYED_STACK naming a deployed stack with the database (and AWS "
        "credentials for its account): moto's RDS Data API returns canned results",
    ),
]
# A paused instance resumes in seconds, longer after a day paused: wait up to this long for the first answer.
RESUME_SECONDS = 120


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


def data_api(outputs: dict[str, Any], sql: str) -> list[list[dict[str, Any]]]:
    """Run `sql` through the Data API as the runner does, waiting for a paused instance to resume."""
    import boto3

    client = boto3.client("rds-data", region_name=_region(outputs["clusterArn"]))
    deadline = time.monotonic() + RESUME_SECONDS
    while True:
        try:
            response = client.execute_statement(
                resourceArn=outputs["clusterArn"],
                secretArn=outputs["masterUserSecretArn"],
                database=outputs["databaseName"],
                sql=sql,
            )
            records: list[list[dict[str, Any]]] = response.get("records", [])
            return records
        except client.exceptions.DatabaseResumingException:
            if time.monotonic() > deadline:
                raise
            time.sleep(5)


def test_the_data_api_answers_with_the_secret_rds_manages(outputs: dict[str, Any]) -> None:
    assert data_api(outputs, "SELECT 1") == [[{"longValue": 1}]]


def test_tls_is_forced(outputs: dict[str, Any]) -> None:
    ((value,),) = data_api(outputs, "SELECT current_setting('rds.force_ssl')")
    assert value["stringValue"] in ("1", "on")


def test_the_scaling_configuration_is_the_one_the_program_set(outputs: dict[str, Any]) -> None:
    import boto3

    rds = boto3.client("rds", region_name=_region(outputs["clusterArn"]))
    (cluster,) = rds.describe_db_clusters(DBClusterIdentifier=outputs["clusterIdentifier"])["DBClusters"]
    actual = cluster["ServerlessV2ScalingConfiguration"]
    expected = outputs["scaling"]
    assert (actual["MinCapacity"], actual["MaxCapacity"]) == (expected["minCapacity"], expected["maxCapacity"])
    if expected["secondsUntilAutoPause"] is not None:
        assert actual["SecondsUntilAutoPause"] == expected["secondsUntilAutoPause"]
    assert cluster["HttpEndpointEnabled"] is True and cluster["IAMDatabaseAuthenticationEnabled"] is True


def test_the_logs_land_in_the_group_the_program_made(outputs: dict[str, Any]) -> None:
    import boto3

    logs = boto3.client("logs", region_name=_region(outputs["clusterArn"]))
    name = f"/aws/rds/cluster/{outputs['clusterIdentifier']}/postgresql"
    (group,) = [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
    assert group.get("retentionInDays") and group.get("kmsKeyId")
