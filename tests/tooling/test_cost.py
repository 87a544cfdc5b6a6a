"""`etlctl cost`: the estimate priced from registrations, checked on small graphs built here against figures worked
out by hand with a price table of round numbers; then the stack files (dev within its $25 at rest, nothing unpriced),
the README's generated cost tables, and the command's errors.

The hand figures use the test's own price table (`PRICES`), so a change to the real `etlctl/prices.toml` never moves
them; the real table is checked for what it must hold (a source and a date per price, every region the stacks use).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from etlctl import cost
from etlctl.mocks import Registration
from etlctl.offline import Evaluation
from etlctl.stack_config import StackConfig
from tests.support.etlctl_cli import etlctl
from tests.support.stacks import ROOT, STACKS, evaluated

REGION = "test-region-1"
PRICES = cost.PriceTable(
    region=REGION,
    entries={
        key: {REGION: value, **({"free": free} if free else {})}
        for key, value, free in [
            ("nat_gateway_hour", 0.05, 0),
            ("public_ipv4_hour", 0.005, 0),
            ("interface_endpoint_az_hour", 0.01, 0),
            ("ec2_t4g_nano_hour", 0.004, 0),
            ("ebs_gp3_gb_month", 0.1, 0),
            ("kms_key_month", 1.0, 0),
            ("cloudwatch_alarm_month", 0.1, 10),
            ("cloudwatch_dashboard_month", 3.0, 3),
            ("secret_month", 0.4, 0),
            ("aurora_serverless_v2_acu_hour", 0.1, 0),
            ("kinesis_shard_hour", 0.02, 0),
            ("kinesis_on_demand_stream_hour", 0.04, 0),
            ("opensearch_serverless_ocu_hour", 0.2, 0),
            ("emr_serverless_vcpu_hour", 0.05, 0),
            ("emr_serverless_gb_hour", 0.005, 0),
            ("redshift_serverless_rpu_hour", 0.4, 0),
            ("lambda_gb_second_arm64", 0.00001, 0),
            ("lambda_gb_second_x86_64", 0.00002, 0),
            ("lambda_request", 0.0000002, 0),
            ("fargate_vcpu_hour_arm64", 0.04, 0),
            ("fargate_gb_hour_arm64", 0.004, 0),
            ("fargate_vcpu_hour_x86_64", 0.05, 0),
            ("fargate_gb_hour_x86_64", 0.005, 0),
            ("fargate_spot_factor", 0.3, 0),
            ("glue_dpu_hour", 0.4, 0),
            ("glue_flex_dpu_hour", 0.3, 0),
            ("sfn_standard_transition", 0.00003, 0),
            ("sfn_express_request", 0.000001, 0),
        ]
    },
)
PROJECT = "p"
STACK_URN = f"urn:pulumi:t::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-t"


def component(name: str, kind: str = "etl:architectures:Thing") -> Registration:
    return Registration(
        urn=f"urn:pulumi:t::{PROJECT}::{kind}::{PROJECT}-{name}",
        type=kind,
        name=f"{PROJECT}-{name}",
        parent=STACK_URN,
        custom=False,
        protect=False,
        retain_on_delete=False,
        provider="",
        dependencies=[],
        inputs={},
    )


def resource(
    parent: Registration, token: str, name: str, inputs: dict[str, Any], outputs: dict[str, Any] | None = None
) -> Registration:
    return Registration(
        urn=f"{parent.urn}${token}::{name}",
        type=token,
        name=name,
        parent=parent.urn,
        custom=True,
        protect=False,
        retain_on_delete=False,
        provider="",
        dependencies=[],
        inputs=inputs,
        outputs={**inputs, **(outputs or {})},
    )


def evaluation(*registrations: Registration, stack: str = "t") -> Evaluation:
    config = StackConfig(project=PROJECT, stack=stack, values={"aws:region": REGION}, secret_keys=[])
    return Evaluation(config=config, preview=False, registrations=list(registrations))


def at_rest_graph(alarms: int = 12) -> list[Registration]:
    network = component("network", "etl:foundation:Network")
    data = component("data")
    return [
        network,
        data,
        resource(network, "aws:ec2/natGateway:NatGateway", "nat", {"subnetId": "subnet-1"}),
        resource(network, "aws:ec2/eip:Eip", "nat-ip", {"domain": "vpc"}),
        resource(
            network,
            "aws:ec2/vpcEndpoint:VpcEndpoint",
            "logs",
            {"vpcEndpointType": "Interface", "subnetIds": ["subnet-1", "subnet-2"]},
        ),
        resource(network, "aws:ec2/vpcEndpoint:VpcEndpoint", "s3", {"vpcEndpointType": "Gateway"}),
        resource(network, "aws:ec2/vpc:Vpc", "vpc", {"cidrBlock": "10.0.0.0/16"}),
        resource(data, "aws:kms/key:Key", "key", {}),
        resource(data, "aws:kinesis/stream:Stream", "stream", {"shardCount": 2}),
        resource(
            data,
            "aws:rds/cluster:Cluster",
            "db",
            {
                "manageMasterUserPassword": True,
                "clusterIdentifier": "db",
                "serverlessv2ScalingConfiguration": {"minCapacity": 0.5, "maxCapacity": 4},
            },
        ),
        resource(
            data,
            "aws:rds/clusterInstance:ClusterInstance",
            "db-writer",
            {"clusterIdentifier": "db", "instanceClass": "db.serverless"},
        ),
        resource(
            data, "aws:opensearch/serverlessCollection:ServerlessCollection", "search", {"standbyReplicas": "DISABLED"}
        ),
        resource(
            data,
            "aws:emrserverless/application:Application",
            "spark",
            {
                "autoStopConfiguration": {"enabled": False},
                "initialCapacities": [
                    {
                        "initialCapacityType": "Driver",
                        "initialCapacityConfig": {
                            "workerCount": 1,
                            "workerConfiguration": {"cpu": "2 vCPU", "memory": "4 GB"},
                        },
                    }
                ],
            },
        ),
        *(resource(data, "aws:cloudwatch/metricAlarm:MetricAlarm", f"alarm-{i:02}", {}) for i in range(alarms)),
    ]


def test_at_rest_figures_equal_the_hand_computed_ones() -> None:
    estimate = cost.estimate(evaluation(*at_rest_graph()), prices=PRICES)
    monthly = {item.resource: item.monthly for item in estimate.at_rest}
    assert monthly["nat"] == pytest.approx(730 * 0.05)
    assert monthly["nat-ip"] == pytest.approx(730 * 0.005)
    assert monthly["logs"] == pytest.approx(2 * 730 * 0.01)  # one network interface per subnet
    assert monthly["key"] == 1.0
    assert monthly["stream"] == pytest.approx(2 * 730 * 0.02)
    assert monthly["db"] == 0.4  # the managed master password is a secret
    assert monthly["db-writer"] == pytest.approx(0.5 * 730 * 0.1)
    assert monthly["search"] == pytest.approx(1 * 730 * 0.2)  # 0.5 indexing + 0.5 search OCU without standby
    assert monthly["spark"] == pytest.approx(730 * (2 * 0.05 + 4 * 0.005))
    # 12 alarms at $0.10 each, and the account's free 10 as one credit
    assert [m for r, m in monthly.items() if r.startswith("alarm")] == [0.1] * 12
    assert monthly["10 free alarms"] == pytest.approx(-1.0)
    assert "s3" not in monthly and "vpc" not in monthly
    assert {i.resource for i in estimate.free} >= {"s3", "vpc"}
    assert estimate.monthly_at_rest == pytest.approx(sum(monthly.values()))
    by_component = estimate.by_component()
    assert by_component["network"] == pytest.approx(730 * (0.05 + 0.005 + 0.02))
    assert by_component["(free tier)"] == pytest.approx(-1.0)
    assert set(by_component) == {"network", "data", "(free tier)"}


def test_settings_that_cost_nothing_at_rest_price_at_zero() -> None:
    data = component("data")
    graph = [
        data,
        resource(
            data,
            "aws:rds/cluster:Cluster",
            "db",
            {"clusterIdentifier": "db", "serverlessv2ScalingConfiguration": {"minCapacity": 0, "maxCapacity": 4}},
        ),
        resource(
            data,
            "aws:rds/clusterInstance:ClusterInstance",
            "db-writer",
            {"clusterIdentifier": "db", "instanceClass": "db.serverless"},
        ),
        resource(
            data, "aws:emrserverless/application:Application", "spark", {"autoStopConfiguration": {"enabled": True}}
        ),
        resource(data, "aws:redshiftserverless/workgroup:Workgroup", "wh", {"baseCapacity": 8}),
        *(resource(data, "aws:cloudwatch/metricAlarm:MetricAlarm", f"alarm-{i}", {}) for i in range(10)),
    ]
    estimate = cost.estimate(evaluation(*graph), prices=PRICES)
    assert estimate.monthly_at_rest == pytest.approx(0)  # ten alarms, all in the free tier
    assert {i.resource for i in estimate.free} >= {"db", "db-writer", "spark", "wh"}
    workgroup = next(i for i in estimate.free if i.resource == "wh")
    assert "$3.20 per hour" in workgroup.basis  # 8 RPU x $0.40, stated for when queries run


def test_a_nat_instance_is_its_hours_volume_and_public_address() -> None:
    network = component("network")
    instance = resource(
        network,
        "aws:ec2/instance:Instance",
        "nat",
        {"instanceType": "t4g.nano", "associatePublicIpAddress": True, "rootBlockDevice": {"volumeSize": 8}},
    )
    estimate = cost.estimate(evaluation(network, instance), prices=PRICES)
    assert estimate.monthly_at_rest == pytest.approx(730 * 0.004 + 8 * 0.1 + 730 * 0.005)


def test_types_without_a_rule_are_reported_unpriced_not_counted_as_zero() -> None:
    network = component("network")
    graph = [
        network,
        resource(network, "aws:ec2/transitGateway:TransitGateway", "tgw", {}),
        resource(network, "aws:ec2/instance:Instance", "big", {"instanceType": "m7g.large"}),
        resource(network, "aws:ec2/vpc:Vpc", "vpc", {}),
    ]
    estimate = cost.estimate(evaluation(*graph), prices=PRICES)
    unpriced = {item.resource: item.basis for item in estimate.unpriced}
    assert set(unpriced) == {"tgw", "big"}
    assert "m7g.large" in unpriced["big"]
    text = cost.render(estimate, "table")
    assert "UNPRICED" in text and "tgw [aws:ec2/transitGateway:TransitGateway]" in text
    assert [u["resource"] for u in json.loads(cost.render(estimate, "json"))["unpriced"]] == ["big", "tgw"]


@pytest.mark.parametrize(
    ("expression", "runs"),
    [
        ("rate(1 hour)", 730),
        ("rate(15 minutes)", 730 * 4),
        ("rate(2 days)", 730 / 48),
        ("cron(0 3 * * ? *)", 730 / 24),
        ("cron(0 6,18 * * ? *)", 2 * 730 / 24),
        ("cron(0/30 8-17 ? * MON-FRI *)", 2 * 10 * 5 * 730 / 24 / 7),
        ("cron(0 1 1 * ? *)", 1),
        ("at(2027-01-01T00:00:00)", 0),
    ],
)
def test_runs_a_month_from_the_schedule_expression(expression: str, runs: float) -> None:
    assert cost.runs_per_month(expression) == pytest.approx(runs)


@pytest.mark.parametrize("expression", ["rate(1 fortnight)", "cron(0 3 * *)", "every day"])
def test_an_unreadable_schedule_is_an_error_naming_it(expression: str) -> None:
    with pytest.raises(cost.CostError, match=re.escape(repr(expression))):
        cost.runs_per_month(expression)


def pipeline_graph(machine_type: str = "STANDARD") -> list[Registration]:
    """A schedule starting a state machine: a Choice whose default fails, a Map of one Lambda stage, a Fargate Spot
    task, a Glue job, then success; plus a correction branch a scheduled run never takes."""
    arch = component("arch")
    function = resource(
        arch,
        "aws:lambda/function:Function",
        "extract",
        {"memorySize": 2048, "architectures": ["arm64"]},
        {"arn": "arn:aws:lambda:r:1:function:x"},
    )
    fix = resource(
        arch,
        "aws:lambda/function:Function",
        "fix",
        {"memorySize": 10240, "architectures": ["x86_64"]},
        {"arn": "arn:aws:lambda:r:1:function:fix"},
    )
    task = resource(
        arch,
        "aws:ecs/taskDefinition:TaskDefinition",
        "transform",
        {"cpu": "1024", "memory": "2048", "runtimePlatform": {"cpuArchitecture": "ARM64"}},
        {"arn": "arn:aws:ecs:r:1:task-definition/t:1"},
    )
    job = resource(
        arch,
        "aws:glue/job:Job",
        "load",
        {"name": "load-job", "workerType": "G.2X", "numberOfWorkers": 3, "executionClass": "FLEX"},
    )
    definition = {
        "StartAt": "Check",
        "States": {
            "Check": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.ok", "IsPresent": True, "Next": "Sources"},
                    {"Variable": "$.fix", "IsPresent": True, "Next": "Fix"},
                ],
                "Default": "Refused",
            },
            "Refused": {"Type": "Pass", "Next": "Failed"},
            "Failed": {"Type": "Fail"},
            "Fix": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "arn:aws:lambda:r:1:function:fix"},
                "End": True,
            },
            "Sources": {
                "Type": "Map",
                "Next": "Transform",
                "ItemProcessor": {
                    "StartAt": "Extract",
                    "States": {
                        "Extract": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::lambda:invoke",
                            "Parameters": {"FunctionName": "arn:aws:lambda:r:1:function:x"},
                            "End": True,
                        }
                    },
                },
            },
            "Transform": {
                "Type": "Task",
                "Resource": "arn:aws:states:::ecs:runTask.sync",
                "Next": "Load",
                "Parameters": {
                    "TaskDefinition": "arn:aws:ecs:r:1:task-definition/t:1",
                    "CapacityProviderStrategy": [{"CapacityProvider": "FARGATE_SPOT"}],
                },
            },
            "Load": {
                "Type": "Task",
                "Resource": "arn:aws:states:::glue:startJobRun.sync",
                "Parameters": {"JobName": "load-job"},
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }
    machine = resource(
        arch,
        "aws:sfn/stateMachine:StateMachine",
        "machine",
        {"definition": json.dumps(definition), "type": machine_type},
        {"arn": "arn:aws:states:r:1:stateMachine:m"},
    )
    schedule = resource(
        arch,
        "aws:scheduler/schedule:Schedule",
        "schedule",
        {"scheduleExpression": "cron(0 2 * * ? *)", "target": {"arn": "arn:aws:states:r:1:stateMachine:m"}},
    )
    return [arch, function, fix, task, job, machine, schedule]


def test_per_run_figures_follow_the_scheduled_path_and_the_stage_sizes() -> None:
    assumptions = cost.Assumptions(stage_minutes=6)
    estimate = cost.estimate(evaluation(*pipeline_graph()), assumptions, prices=PRICES)
    (run,) = estimate.runs
    parts = {part.resource: part.monthly for part in run.parts}
    lambda_run = 2 * 360 * 0.00001 + 0.0000002  # 2 GB x 360 s, one request
    fargate_run = 0.1 * (1 * 0.04 + 2 * 0.004) * 0.3  # 1 vCPU + 2 GB for 0.1 h on Spot
    glue_run = 3 * 2 * 0.1 * 0.3  # 3 x G.2X = 6 DPU for 0.1 h on Flex
    transitions = 6 * 0.00003  # Check, Sources, Extract, Transform, Load, Done
    assert parts == pytest.approx(
        {"extract": lambda_run, "transform": fargate_run, "load": glue_run, "machine": transitions}
    )
    assert "fix" not in parts  # the correction a manual start asks for
    assert run.runs_per_month == pytest.approx(730 / 24)
    assert run.per_run == pytest.approx(lambda_run + fargate_run + glue_run + transitions)
    assert estimate.monthly_runs == pytest.approx(run.per_run * 730 / 24)


def test_a_map_runs_its_stages_once_per_item() -> None:
    estimate = cost.estimate(evaluation(*pipeline_graph()), cost.Assumptions(items_per_map=3), prices=PRICES)
    assert [part.resource for part in estimate.runs[0].parts].count("extract") == 3


def test_an_express_machine_pays_a_request_not_transitions() -> None:
    estimate = cost.estimate(evaluation(*pipeline_graph("EXPRESS")), prices=PRICES)
    machine = next(part for part in estimate.runs[0].parts if part.resource == "machine")
    assert machine.monthly == 0.000001


def test_the_compare_delta_is_head_minus_base_by_component() -> None:
    base = cost.estimate(evaluation(*at_rest_graph(alarms=10), stack="base"), prices=PRICES)
    head = cost.estimate(evaluation(*at_rest_graph(alarms=15), *pipeline_graph()), prices=PRICES)
    change = cost.delta(base, head)
    assert change["monthlyAtRest"] == pytest.approx(5 * 0.1)
    assert change["atRestByComponent"] == pytest.approx({"data": 0.5})  # the credit stays at 10 alarms
    assert change["monthlyRuns"] == pytest.approx(head.monthly_runs, abs=1e-4)  # rounded to 4 places
    assert "compared with base: at rest +$0.50 a month" in cost.render(head, "table", base)
    assert "Compared with `base`: at rest +$0.50 a month" in cost.render(head, "markdown", base)
    assert "| (free tier) | -$1.00 | 10 free alarms (the account's) |" in cost.render(head, "markdown")
    assert json.loads(cost.render(head, "json", base))["compare"]["monthlyAtRest"] == pytest.approx(0.5)


def test_the_price_table_is_dated_sourced_and_covers_the_stacks_regions() -> None:
    table = tomllib.loads((ROOT / "etlctl" / "prices.toml").read_text())
    regions = {"us-east-1"} | {evaluated_region(stack) for stack in STACKS}
    for key, entry in table.items():
        if key == "meta":
            continue
        assert entry["source"].startswith("https://aws.amazon.com/"), key
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", entry["checked"]), key
        assert regions <= set(entry), f"{key} lacks {regions - set(entry)}"
    with pytest.raises(cost.CostError, match=r"no ap-south-2 price for: .*nat_gateway_hour"):
        cost.PriceTable.load("ap-south-2")


def test_the_real_table_prices_the_issues_us_east_1_figures() -> None:
    """The issue's figures (us-east-1): a NAT gateway about $33 a month, an interface endpoint about $7.30 an AZ."""
    network = component("network")
    graph = [
        network,
        resource(network, "aws:ec2/natGateway:NatGateway", "nat", {}),
        resource(
            network, "aws:ec2/vpcEndpoint:VpcEndpoint", "logs", {"vpcEndpointType": "Interface", "subnetIds": ["a"]}
        ),
    ]
    estimate = cost.estimate(evaluation(*graph), prices=cost.PriceTable.load("us-east-1"))
    assert estimate.region == "us-east-1"
    assert {i.resource: round(i.monthly, 2) for i in estimate.at_rest} == {"nat": 32.85, "logs": 7.30}


def evaluated_region(stack: str) -> str:
    text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
    match = re.search(r"aws:region:\s*(\S+)", text)
    assert match, stack
    return match.group(1)


# ---------------------------------------------------------------------------------------------------------------------
# The stack files (evaluated once per session, shared with the other whole-program tests)
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_of_every_stack_is_priced_or_known_free(stack: str) -> None:
    estimate = cost.estimate(evaluated(stack))
    assert not estimate.unpriced, [(i.resource, i.type) for i in estimate.unpriced]
    assert all(run.per_run > 0 for run in estimate.runs), [r.schedule for r in estimate.runs if not r.per_run]


def test_dev_costs_at_most_25_dollars_a_month_at_rest() -> None:
    estimate = cost.estimate(evaluated("dev"))
    assert 0 < estimate.monthly_at_rest <= 25, cost.render(estimate, "table")


def test_prod_keeps_its_nat_gateways_and_staging_its_gateway() -> None:
    for stack, gateways in (("prod", 3), ("staging", 1)):
        items = cost.estimate(evaluated(stack)).at_rest
        assert sum(1 for i in items if i.type == "aws:ec2/natGateway:NatGateway") == gateways, stack


README = ROOT / "README.md"
BEGIN, END = cost.README_BEGIN, cost.README_END


def test_the_readme_cost_tables_are_current() -> None:
    text = README.read_text()
    assert BEGIN in text and END in text, f"README.md lacks the markers {BEGIN} ... {END}"
    current = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    expected = "\n\n".join(cost.render(cost.estimate(evaluated(stack)), "markdown") for stack in STACKS)
    assert current == expected, "the README's cost tables are stale: run `make cost-table`"


# ---------------------------------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stage-minutes", "0"], "--stage-minutes and --data-mb must be positive"),
        (["--compare", "notes.txt"], "expected a stack file named Pulumi.<stack>.yaml"),
        (["--compare", "missing/Pulumi.dev.yaml"], "no such file"),
        (["--compare", "no-such-revision:Pulumi.dev.yaml"], "git archive failed"),
        (["--compare", "HEAD:Pulumi.nosuch.yaml"], "revision HEAD has no Pulumi.nosuch.yaml"),
        (["--format", "xml"], "invalid choice: 'xml'"),
        (["--stack", "nosuch"], "nosuch"),
        (["--price-region", "mars-north-1"], "prices.toml has no mars-north-1 price for: "),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args: list[str], message: str) -> None:
    stack = [] if "--stack" in args else ["--stack", "dev"]
    result = etlctl("cost", *stack, *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_the_command_prints_the_estimate_and_a_delta_from_a_revision(tmp_path: Path) -> None:
    result = etlctl("cost", "--stack", "dev", "--format", "json", "--compare", "HEAD:Pulumi.dev.yaml", timeout=600)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["stack"] == "dev" and data["monthlyAtRest"] == pytest.approx(
        cost.estimate(evaluated("dev")).monthly_at_rest, abs=1e-3
    )
    assert data["compare"]["base"] == "dev" and "monthlyAtRest" in data["compare"]
    assert any("hours a month: 730" in line for line in data["assumptions"])


def test_pull_requests_get_every_stacks_estimate_and_delta_as_a_comment() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "preview.yml").read_text())
    job = workflow["jobs"]["cost"]
    assert job["if"] == "github.event_name == 'pull_request'" and job["permissions"]["pull-requests"] == "write"
    script = "\n".join(step.get("run", "") for step in job["steps"])
    assert 'etlctl cost --stack "$stack" --format markdown --compare "$BASE_SHA:$file"' in script
    assert "for file in Pulumi.*.yaml" in script and "gh pr comment" in script
