"""`etlctl cost`: what a stack costs a month at rest and per run, from the offline preview's registrations.

Nothing here lists the stack's resources: every registration of the evaluation (`etlctl.offline`, the same one
`etlctl preview --offline` prints) is priced by the rule for its type, reading the resource's own inputs (NAT
gateways, interface endpoints x subnets, KMS keys, alarms beyond the free 10, Kinesis shards, Aurora's minimum ACU, EMR
Serverless pre-initialized workers, OpenSearch Serverless OCUs...). Types that cost nothing while idle are `FREE`
(they bill only by use: requests, GB stored, GB scanned); a type in neither table is reported as unpriced, never
silently counted as zero.

Per run: each schedule (`aws:scheduler/schedule:Schedule`) gives runs a month from its expression; a state machine
target is walked along its scheduled path (at each Choice the default, unless it only leads to a Fail state) and each
Task is priced from the resource it names (a Lambda's memory, a task definition's vCPU and GB on Fargate or Fargate
Spot, a Glue job's workers and execution class, an EMR Serverless job's Spark sizes), plus the state transitions; a
Lambda target is its function and the functions its event sources feed. Stage durations are an assumption
(`Assumptions`), printed with the figures. Prices come from `prices.toml` beside this module, dated and sourced.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
import tomllib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from etlctl.mocks import Registration
from etlctl.offline import Evaluation

PRICES_PATH = Path(__file__).resolve().parent / "prices.toml"
HOURS_PER_MONTH = 730.0
DAYS_PER_MONTH = HOURS_PER_MONTH / 24


class CostError(Exception):
    """Bad input to the estimate (a schedule it cannot read, a region the price table lacks)."""


# ---------------------------------------------------------------------------------------------------------------------
# Prices and assumptions
# ---------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PriceTable:
    entries: Mapping[str, Mapping[str, Any]]
    region: str

    @classmethod
    def load(cls, region: str, path: Path = PRICES_PATH) -> PriceTable:
        data = tomllib.loads(path.read_text())
        entries = {key: value for key, value in data.items() if key != "meta"}
        missing = sorted(key for key, value in entries.items() if region not in value)
        if missing:
            raise CostError(f"{path.name} has no {region} price for: {', '.join(missing)}; add the region's figures")
        return cls(entries=entries, region=region)

    def __call__(self, key: str) -> float:
        return float(self.entries[key][self.region])

    def free(self, key: str) -> int:
        return int(self.entries[key].get("free", 0))

    def checked(self) -> str:
        return max((str(entry.get("checked", "")) for entry in self.entries.values()), default="") or "undated"


@dataclasses.dataclass(frozen=True)
class Assumptions:
    stage_minutes: float = 5.0
    """How long one stage Task (a Lambda, a Fargate task, a Glue or EMR job) runs in a scheduled run."""
    data_mb_per_run: float = 100.0
    """The data one run moves; the stage duration above is what that volume takes (stated, not derived)."""
    items_per_map: int = 1
    """Iterations of a Map state (one source per run)."""

    def lines(self) -> list[str]:
        return [
            f"hours a month: {HOURS_PER_MONTH:g} (AWS's convention); days a month: {DAYS_PER_MONTH:.2f}",
            f"data volume per run: {self.data_mb_per_run:g} MB; each stage task runs {self.stage_minutes:g} min",
            f"Map states: {self.items_per_map} iteration(s) per run (one source)",
            "at rest: what bills with no run at all; storage, requests, logs and transfer bill by use, not in it",
            "free tiers: the account's 10 free alarms and 3 free dashboards count against this stack alone",
        ]


# ---------------------------------------------------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Item:
    component: str
    resource: str
    type: str
    monthly: float
    basis: str


@dataclasses.dataclass(frozen=True)
class RunCost:
    schedule: str
    component: str
    expression: str
    runs_per_month: float
    per_run: float
    parts: tuple[Item, ...]

    @property
    def monthly(self) -> float:
        return self.per_run * self.runs_per_month


@dataclasses.dataclass(frozen=True)
class Estimate:
    stack: str
    region: str
    at_rest: tuple[Item, ...]
    free: tuple[Item, ...]
    unpriced: tuple[Item, ...]
    runs: tuple[RunCost, ...]
    assumptions: Assumptions
    prices_checked: str

    @property
    def monthly_at_rest(self) -> float:
        return sum(item.monthly for item in self.at_rest)

    @property
    def monthly_runs(self) -> float:
        return sum(run.monthly for run in self.runs)

    def by_component(self) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for item in self.at_rest:
            totals[item.component] += item.monthly
        return dict(sorted(totals.items()))


# ---------------------------------------------------------------------------------------------------------------------
# The graph
# ---------------------------------------------------------------------------------------------------------------------


class Graph:
    """The registrations with the lookups the rules need: components, resources by ARN, subtrees."""

    def __init__(self, evaluation: Evaluation) -> None:
        self.evaluation = evaluation
        self.project = evaluation.config.project
        self.by_urn = {r.urn: r for r in evaluation.registrations}
        self.resources = evaluation.resources
        self.by_arn: dict[str, Registration] = {}
        for registration in self.resources:
            for key in ("arn", "name", "id"):
                value = registration.outputs.get(key)
                if isinstance(value, str) and value.startswith("arn:"):
                    self.by_arn.setdefault(value, registration)

    def component(self, registration: Registration) -> str:
        """The outermost component holding the resource, without the project prefix (`foundation`, `glue`...)."""
        node, top = registration, None
        while node.parent in self.by_urn:
            node = self.by_urn[node.parent]
            if not node.custom:
                top = node
        name = top.name if top is not None else "(stack)"
        return name.removeprefix(f"{self.project}-") if name != self.project else "foundation"

    def of_type(self, token: str) -> list[Registration]:
        return [r for r in self.resources if r.type == token]

    def by_name_output(self, token: str, key: str, value: object) -> Registration | None:
        for registration in self.of_type(token):
            if registration.outputs.get(key) == value or registration.inputs.get(key) == value:
                return registration
        return None


# ---------------------------------------------------------------------------------------------------------------------
# At rest: one rule per type
# ---------------------------------------------------------------------------------------------------------------------

Rule = Callable[[Registration, Graph, PriceTable], tuple[float, str]]


def _hours(price: float) -> float:
    return price * HOURS_PER_MONTH


def _nat_gateway(r: Registration, g: Graph, p: PriceTable) -> tuple[float, str]:
    return _hours(p("nat_gateway_hour")), f"{HOURS_PER_MONTH:g} h x ${p('nat_gateway_hour')}"


def _eip(r: Registration, g: Graph, p: PriceTable) -> tuple[float, str]:
    return _hours(p("public_ipv4_hour")), f"public IPv4, {HOURS_PER_MONTH:g} h x ${p('public_ipv4_hour')}"


def _vpc_endpoint(r: Registration, g: Graph, p: PriceTable) -> tuple[float, str]:
    kind = r.inputs.get("vpcEndpointType", "Gateway")
    if kind == "Gateway":
        return 0.0, "gateway endpoint: free"
    subnets = len(r.inputs.get("subnetIds") or [])
    price = p("interface_endpoint_az_hour")
    return subnets * _hours(price), f"{kind} endpoint in {subnets} AZ(s) x {HOURS_PER_MONTH:g} h x ${price}"


def _instance(r: Registration, g: Graph, p: PriceTable) -> tuple[float, str]:
    kind = str(r.inputs.get("instanceType", ""))
    key = f"ec2_{kind.replace('.', '_')}_hour"
    if key not in p.entries:
        raise _Unpriced(f"instance type {kind!r} has no price in prices.toml (add {key})")
    volume = r.inputs.get("rootBlockDevice") or {}
    size = float(volume.get("volumeSize") or 8)
    public = 1 if r.inputs.get("associatePublicIpAddress") else 0
    total = _hours(p(key)) + size * p("ebs_gp3_gb_month") + public * _hours(p("public_ipv4_hour"))
    return total, f"{kind} {HOURS_PER_MONTH:g} h + {size:g} GB gp3" + (" + public IPv4" if public else "")


def _kms_key(r: Registration, g: Graph, p: PriceTable) -> tuple[float, str]:
    return p("kms_key_month"), "one customer managed key"


def _secret(r: Registration, g: Graph, p: PriceTable) -> tuple[float, str]:
    return p("secret_month"), "one secret"


def _rds_cluster(r: Registration, g: Graph, p: PriceTable) -> tuple[float, str]:
    if r.inputs.get("manageMasterUserPassword"):
        return p("secret_month"), "its master password, managed in Secrets Manager"
    return 0.0, "compute is priced on its instances; storage by use"


def _rds_instance(r: Registration, g: Graph, p: PriceTable) -> tuple[float, str]:
    if r.inputs.get("instanceClass") != "db.serverless":
        raise _Unpriced(f"provisioned instance class {r.inputs.get('instanceClass')!r} has no price in prices.toml")
    cluster = _cluster_of(r, g)
    scaling = (cluster.inputs.get("serverlessv2ScalingConfiguration") or {}) if cluster else {}
    minimum = float(scaling.get("minCapacity", 0.5))
    price = p("aurora_serverless_v2_acu_hour")
    if minimum == 0:
        return 0.0, "min 0 ACU: pauses when idle (runs pay its ACU time)"
    return minimum * _hours(price), f"min {minimum:g} ACU x {HOURS_PER_MONTH:g} h x ${price}"


def _cluster_of(r: Registration, g: Graph) -> Registration | None:
    wanted = r.inputs.get("clusterIdentifier")
    for cluster in g.of_type("aws:rds/cluster:Cluster"):
        if wanted in (
            cluster.outputs.get("clusterIdentifier"),
            cluster.inputs.get("clusterIdentifier"),
            cluster.outputs.get("id"),
        ):
            return cluster
    clusters = g.of_type("aws:rds/cluster:Cluster")
    return clusters[0] if len(clusters) == 1 else None


def _kinesis_stream(r: Registration, g: Graph, p: PriceTable) -> tuple[float, str]:
    mode = (r.inputs.get("streamModeDetails") or {}).get("streamMode", "PROVISIONED")
    if mode == "ON_DEMAND":
        return _hours(p("kinesis_on_demand_stream_hour")), "on-demand stream-hours (data by use)"
    shards = int(r.inputs.get("shardCount") or 1)
    price = p("kinesis_shard_hour")
    return shards * _hours(price), f"{shards} shard(s) x {HOURS_PER_MONTH:g} h x ${price}"


def _aoss_collection(r: Registration, g: Graph, p: PriceTable) -> tuple[float, str]:
    redundant = r.inputs.get("standbyReplicas", "ENABLED") != "DISABLED"
    ocus = 2.0 if redundant else 1.0
    price = p("opensearch_serverless_ocu_hour")
    what = "1 indexing + 1 search OCU (standby replicas)" if redundant else "0.5 indexing + 0.5 search OCU"
    return ocus * _hours(price), f"minimum {what} x {HOURS_PER_MONTH:g} h x ${price}"


def _aoss_endpoint(r: Registration, g: Graph, p: PriceTable) -> tuple[float, str]:
    subnets = len(r.inputs.get("subnetIds") or [])
    price = p("interface_endpoint_az_hour")
    return subnets * _hours(price), f"VPC endpoint in {subnets} AZ(s) x {HOURS_PER_MONTH:g} h x ${price}"


_WORKER_SIZE = re.compile(r"([\d.]+)\s*(vCPU|GB)", re.IGNORECASE)


def _emr_serverless_app(r: Registration, g: Graph, p: PriceTable) -> tuple[float, str]:
    initial = r.inputs.get("initialCapacities") or []
    vcpu = memory = 0.0
    for capacity in initial:
        config = capacity.get("initialCapacityConfig") or {}
        workers = float(config.get("workerCount") or 0)
        worker = config.get("workerConfiguration") or {}
        vcpu += workers * _size(worker.get("cpu"), "vCPU")
        memory += workers * _size(worker.get("memory"), "GB")
    if not vcpu and not memory:
        return 0.0, "no pre-initialized capacity: bills only while jobs run"
    auto_stop = (r.inputs.get("autoStopConfiguration") or {}).get("enabled", True)
    if auto_stop:
        return 0.0, f"pre-initialized {vcpu:g} vCPU/{memory:g} GB, released on auto-stop (bills while started)"
    hourly = vcpu * p("emr_serverless_vcpu_hour") + memory * p("emr_serverless_gb_hour")
    return _hours(hourly), f"pre-initialized {vcpu:g} vCPU + {memory:g} GB kept started x {HOURS_PER_MONTH:g} h"


def _size(text: object, unit: str) -> float:
    match = _WORKER_SIZE.search(str(text or ""))
    if not match:
        return 0.0
    return float(match.group(1)) if match.group(2).lower() == unit.lower() else 0.0


def _redshift_workgroup(r: Registration, g: Graph, p: PriceTable) -> tuple[float, str]:
    base = float(r.inputs.get("baseCapacity") or 128)
    price = p("redshift_serverless_rpu_hour")
    return 0.0, f"idle: $0; {base:g} RPU base = ${base * price:.2f} per hour of queries (60 s minimum each)"


class _Unpriced(Exception):
    """A resource of a priced type whose particular settings the table has no price for."""


FREE_TIER = "(free tier)"
"""The component the account's free alarms and dashboards are credited under."""

RULES: dict[str, Rule] = {
    "aws:ec2/natGateway:NatGateway": _nat_gateway,
    "aws:ec2/eip:Eip": _eip,
    "aws:ec2/vpcEndpoint:VpcEndpoint": _vpc_endpoint,
    "aws:ec2/instance:Instance": _instance,
    "aws:kms/key:Key": _kms_key,
    "aws:kms/replicaKey:ReplicaKey": _kms_key,
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:rds/cluster:Cluster": _rds_cluster,
    "aws:rds/clusterInstance:ClusterInstance": _rds_instance,
    "aws:kinesis/stream:Stream": _kinesis_stream,
    "aws:opensearch/serverlessCollection:ServerlessCollection": _aoss_collection,
    "aws:opensearch/serverlessVpcEndpoint:ServerlessVpcEndpoint": _aoss_endpoint,
    "aws:emrserverless/application:Application": _emr_serverless_app,
    "aws:redshiftserverless/workgroup:Workgroup": _redshift_workgroup,
}
"""Types that may bill while idle; alarms and dashboards are counted together (their free tiers are per account)."""

COUNTED = {
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("cloudwatch_alarm_month", "alarm"),
    "aws:cloudwatch/compositeAlarm:CompositeAlarm": ("cloudwatch_alarm_month", "alarm"),
    "aws:cloudwatch/dashboard:Dashboard": ("cloudwatch_dashboard_month", "dashboard"),
}

FREE = frozenset(
    {
        # Bill only by use (requests, GB stored or scanned, GB ingested, executions) or never.
        *(f"aws:s3/{kind}" for kind in (
            "bucket:Bucket", "bucketV2:BucketV2", "bucketLifecycleConfiguration:BucketLifecycleConfiguration",
            "bucketLogging:BucketLogging", "bucketNotification:BucketNotification", "bucketObjectv2:BucketObjectv2",
            "bucketOwnershipControls:BucketOwnershipControls", "bucketPolicy:BucketPolicy",
            "bucketPublicAccessBlock:BucketPublicAccessBlock", "bucketVersioning:BucketVersioning",
            "bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "bucketReplicationConfig:BucketReplicationConfig", "bucketObject:BucketObject",
        )),
        "aws:cloudwatch/eventRule:EventRule", "aws:cloudwatch/eventTarget:EventTarget",
        "aws:cloudwatch/logGroup:LogGroup", "aws:cloudwatch/logStream:LogStream",
        "aws:cloudwatch/logResourcePolicy:LogResourcePolicy",
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "aws:ec2/flowLog:FlowLog", "aws:ec2/route:Route",
        "aws:ec2/routeTable:RouteTable", "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "aws:ec2/securityGroup:SecurityGroup", "aws:ec2/subnet:Subnet", "aws:ec2/vpc:Vpc",
        "aws:ec2/internetGateway:InternetGateway", "aws:ec2/tag:Tag", "aws:ec2/launchTemplate:LaunchTemplate",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "aws:ecr/lifecyclePolicy:LifecyclePolicy", "aws:ecr/repository:Repository",
        "aws:ecr/repositoryPolicy:RepositoryPolicy", "docker:index/image:Image", "docker-build:index:Image",
        "aws:ecs/cluster:Cluster", "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders",
        "aws:ecs/taskDefinition:TaskDefinition",
        "aws:glue/catalogDatabase:CatalogDatabase", "aws:glue/catalogTable:CatalogTable",
        "aws:glue/crawler:Crawler", "aws:glue/dataCatalogEncryptionSettings:DataCatalogEncryptionSettings",
        "aws:glue/dataQualityRuleset:DataQualityRuleset", "aws:glue/job:Job",
        "aws:glue/securityConfiguration:SecurityConfiguration",
        "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy", "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:iam/instanceProfile:InstanceProfile", "aws:iam/policy:Policy",
        "aws:kms/alias:Alias",
        "aws:lambda/eventSourceMapping:EventSourceMapping", "aws:lambda/function:Function",
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", "aws:lambda/layerVersion:LayerVersion",
        "aws:lambda/permission:Permission", "aws:lambda/codeSigningConfig:CodeSigningConfig",
        "aws:signer/signingProfile:SigningProfile", "aws:signer/signingJob:SigningJob",
        "aws:rds/clusterParameterGroup:ClusterParameterGroup", "aws:rds/subnetGroup:SubnetGroup",
        "aws:scheduler/schedule:Schedule", "aws:sfn/stateMachine:StateMachine",
        "aws:sns/topic:Topic", "aws:sns/topicPolicy:TopicPolicy", "aws:sns/topicSubscription:TopicSubscription",
        "aws:sqs/queue:Queue", "aws:sqs/queuePolicy:QueuePolicy",
        "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream",
        "aws:opensearch/serverlessSecurityPolicy:ServerlessSecurityPolicy",
        "aws:opensearch/serverlessAccessPolicy:ServerlessAccessPolicy",
        "aws:emr/securityConfiguration:SecurityConfiguration",
        "aws:athena/workgroup:Workgroup", "aws:athena/namedQuery:NamedQuery",
        "aws:redshiftserverless/namespace:Namespace", "aws:redshiftserverless/usageLimit:UsageLimit",
        "aws:secretsmanager/secretVersion:SecretVersion",
    }
)  # fmt: skip
"""Types that cost nothing at rest (listed as free in the table)."""


def _at_rest(graph: Graph, prices: PriceTable) -> tuple[list[Item], list[Item], list[Item]]:
    priced: list[Item] = []
    free: list[Item] = []
    unpriced: list[Item] = []
    counted: dict[str, list[Registration]] = defaultdict(list)
    for r in sorted(graph.resources, key=lambda r: (graph.component(r), r.type, r.name)):
        component = graph.component(r)
        if r.type in COUNTED:
            counted[r.type].append(r)
        elif r.type in RULES:
            try:
                monthly, basis = RULES[r.type](r, graph, prices)
            except _Unpriced as exc:
                unpriced.append(Item(component, r.name, r.type, 0.0, str(exc)))
                continue
            (priced if monthly else free).append(Item(component, r.name, r.type, monthly, basis))
        elif r.type in FREE:
            free.append(Item(component, r.name, r.type, 0.0, "no charge at rest"))
        else:
            unpriced.append(Item(component, r.name, r.type, 0.0, "no pricing rule for this type"))
    # Each alarm and dashboard is priced where it is; the account's free ones are one credit line (not whichever
    # component happens to sort first).
    for token, registrations in counted.items():
        key, noun = COUNTED[token]
        allowance = prices.free(key)
        for r in registrations:
            priced.append(Item(graph.component(r), r.name, r.type, prices(key), f"one {noun}"))
        credited = min(allowance, len(registrations))
        if credited:
            credit = -credited * prices(key)
            priced.append(
                Item(
                    FREE_TIER,
                    f"{credited} free {noun}{'' if credited == 1 else 's'}",
                    token,
                    credit,
                    f"the account's first {allowance}",
                )
            )
    return priced, free, unpriced


# ---------------------------------------------------------------------------------------------------------------------
# Per run
# ---------------------------------------------------------------------------------------------------------------------

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")


def runs_per_month(expression: str) -> float:
    """Scheduled starts a month for an EventBridge Scheduler `rate(...)`, `cron(...)` or `at(...)` expression."""
    rate = _RATE.match(expression.strip())
    if rate:
        count, unit = int(rate.group(1)), rate.group(2)
        per_hour = {"minute": 60.0, "hour": 1.0, "day": 1 / 24}[unit.rstrip("s")]
        return HOURS_PER_MONTH * per_hour / count
    if expression.startswith("at("):
        return 0.0
    cron = _CRON.match(expression.strip())
    if not cron or len(cron.group(1).split()) != 6:
        raise CostError(f"cannot read the schedule {expression!r}: expected rate(N unit), cron(6 fields) or at(...)")
    minutes, hours, day_of_month, month, day_of_week, _year = cron.group(1).split()
    per_day = _field_count(minutes, 60) * _field_count(hours, 24)
    if day_of_month not in ("*", "?"):
        days = float(_field_count(day_of_month, 31))
    elif day_of_week not in ("*", "?"):
        days = _field_count(day_of_week, 7) * DAYS_PER_MONTH / 7
    else:
        days = DAYS_PER_MONTH
    months = 1.0 if month in ("*", "?") else _field_count(month, 12) / 12
    return per_day * days * months


_NAMES = {
    name: index + 1
    for names in (("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"),
                  ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))
    for index, name in enumerate(names)
}  # fmt: skip


def _value(text: str) -> int:
    """A cron field value: a number or a day/month name (SUN=1, JAN=1, as EventBridge numbers them)."""
    if text.isdigit():
        return int(text)
    if text.upper() in _NAMES:
        return _NAMES[text.upper()]
    raise CostError(f"cannot read the cron field value {text!r}")


def _field_count(field: str, size: int) -> int:
    """How many values a cron field takes (`*`, lists, ranges with names, `start/step`)."""
    total = 0
    for part in field.split(","):
        if part in ("*", "?"):
            total += size
        elif "/" in part:
            start, step = part.split("/")
            first = 0 if start in ("*", "") else _value(start.split("-")[0])
            total += len(range(first, size, int(step)))
        elif "-" in part:
            low, high = part.split("-")
            total += _value(high) - _value(low) + 1
        else:
            total += 1
    return total


def scheduled_path(states: Mapping[str, Any], start: str) -> list[str] | None:
    """The states a scheduled run enters, in order: at a Choice the default unless it only ends in a Fail state,
    else the first choice that reaches success; None when no path from `start` succeeds."""

    def walk(name: str, seen: frozenset[str]) -> list[str] | None:
        if name in seen or name not in states:
            return None
        state = states[name]
        kind = state.get("Type")
        if kind == "Fail":
            return None
        if kind == "Succeed" or state.get("End"):
            return [name]
        if kind == "Choice":
            candidates = [state.get("Default"), *[rule.get("Next") for rule in state.get("Choices", [])]]
            for candidate in candidates:
                if candidate:
                    rest = walk(candidate, seen | {name})
                    if rest is not None:
                        return [name, *rest]
            return None
        rest = walk(state["Next"], seen | {name}) if state.get("Next") else None
        return None if rest is None else [name, *rest]

    return walk(start, frozenset())


class RunPricer:
    def __init__(self, graph: Graph, prices: PriceTable, assumptions: Assumptions) -> None:
        self.graph, self.p, self.a = graph, prices, assumptions

    def schedule(self, schedule: Registration) -> RunCost:
        expression = str(schedule.inputs.get("scheduleExpression", ""))
        target = (schedule.inputs.get("target") or {}).get("arn", "")
        parts: list[Item] = []
        resource = self.graph.by_arn.get(target)
        if resource is None:
            parts.append(Item(self.graph.component(schedule), str(target), "?", 0.0, "target not in the stack"))
        elif resource.type == "aws:sfn/stateMachine:StateMachine":
            parts += self.state_machine(resource)
        elif resource.type == "aws:lambda/function:Function":
            for function in self.lambda_chain(resource):
                parts.append(self.function(function))
        else:
            parts.append(Item(self.graph.component(resource), resource.name, resource.type, 0.0, "unpriced target"))
        return RunCost(
            schedule=schedule.name,
            component=self.graph.component(schedule),
            expression=expression,
            runs_per_month=runs_per_month(expression),
            per_run=sum(part.monthly for part in parts),
            parts=tuple(parts),
        )

    # Lambda target: the function and what its event sources feed, within its component.
    def lambda_chain(self, first: Registration) -> list[Registration]:
        component = self.graph.component(first)
        chain = [first]
        for mapping in self.graph.of_type("aws:lambda/eventSourceMapping:EventSourceMapping"):
            if self.graph.component(mapping) != component:
                continue
            name = mapping.inputs.get("functionName")
            function = self.graph.by_arn.get(str(name)) or self.graph.by_name_output(
                "aws:lambda/function:Function", "name", name
            )
            if function is not None and function not in chain:
                chain.append(function)
        return chain

    def function(self, function: Registration, minutes: float | None = None) -> Item:
        minutes = self.a.stage_minutes if minutes is None else minutes
        memory_gb = float(function.inputs.get("memorySize") or 128) / 1024
        arch = (function.inputs.get("architectures") or ["x86_64"])[0]
        rate = self.p(f"lambda_gb_second_{arch}")
        cost = memory_gb * minutes * 60 * rate + self.p("lambda_request")
        basis = f"Lambda {memory_gb:g} GB x {minutes:g} min ({arch})"
        return Item(self.graph.component(function), function.name, function.type, cost, basis)

    def state_machine(self, machine: Registration) -> list[Item]:
        definition = json.loads(str(machine.inputs.get("definition") or "{}"))
        component = self.graph.component(machine)
        parts: list[Item] = []
        transitions = self._walk(definition, parts, 1)
        kind = machine.inputs.get("type", "STANDARD")
        if kind == "EXPRESS":
            cost, basis = self.p("sfn_express_request"), "one EXPRESS request (duration not counted)"
        else:
            cost = transitions * self.p("sfn_standard_transition")
            basis = f"{transitions} state transitions"
        parts.append(Item(component, machine.name, machine.type, cost, basis))
        return parts

    def _walk(self, definition: Mapping[str, Any], parts: list[Item], repeat: int) -> int:
        states = definition.get("States", {})
        path = scheduled_path(states, definition.get("StartAt", "")) or []
        transitions = 0
        for name in path:
            state = states[name]
            transitions += repeat
            if state.get("Type") == "Task":
                for _ in range(repeat):
                    parts.extend(self.task(name, state))
            inner = state.get("ItemProcessor") or state.get("Iterator")
            if state.get("Type") == "Map" and inner:
                transitions += self._walk(inner, parts, repeat * self.a.items_per_map)
            for branch in state.get("Branches", []):
                transitions += self._walk(branch, parts, repeat)
        return transitions

    def task(self, name: str, state: Mapping[str, Any]) -> list[Item]:
        resource = str(state.get("Resource", ""))
        args = state.get("Parameters") or state.get("Arguments") or {}
        service = resource.removeprefix("arn:aws:states:::").split(".")[0]
        if service == "lambda:invoke":
            function = self.graph.by_arn.get(str(args.get("FunctionName")))
            return [self.function(function), *self._database_time(function)] if function else []
        if service == "ecs:runTask":
            return self._fargate(args)
        if service == "glue:startJobRun":
            return self._glue(args)
        if service == "emr-serverless:startJobRun":
            return [self._emr(name, args)]
        return []  # SDK calls (S3, SNS, CloudWatch, Glue catalog): fractions of a cent

    def _fargate(self, args: Mapping[str, Any]) -> list[Item]:
        definition = self.graph.by_arn.get(str(args.get("TaskDefinition")))
        if definition is None:
            return []
        vcpu = float(definition.inputs.get("cpu") or 256) / 1024
        memory = float(definition.inputs.get("memory") or 512) / 1024
        arch = ((definition.inputs.get("runtimePlatform") or {}).get("cpuArchitecture") or "X86_64").lower()
        arch = "arm64" if arch == "arm64" else "x86_64"
        strategy = args.get("CapacityProviderStrategy") or [{"CapacityProvider": args.get("LaunchType", "FARGATE")}]
        spot = strategy[0].get("CapacityProvider") == "FARGATE_SPOT"
        hours = max(self.a.stage_minutes, 1) / 60
        hourly = vcpu * self.p(f"fargate_vcpu_hour_{arch}") + memory * self.p(f"fargate_gb_hour_{arch}")
        factor = self.p("fargate_spot_factor") if spot else 1.0
        basis = (
            f"Fargate{' Spot' if spot else ''} {vcpu:g} vCPU + {memory:g} GB ({arch}) x {self.a.stage_minutes:g} min"
        )
        component = self.graph.component(definition)
        return [Item(component, definition.name, definition.type, hourly * hours * factor, basis)]

    def _glue(self, args: Mapping[str, Any]) -> list[Item]:
        job = self.graph.by_name_output("aws:glue/job:Job", "name", args.get("JobName"))
        if job is None:
            return []
        dpu_per_worker = {"G.025X": 0.25, "G.1X": 1, "G.2X": 2, "G.4X": 4, "G.8X": 8, "Z.2X": 2}
        worker = str(job.inputs.get("workerType") or "G.1X")
        workers = float(job.inputs.get("numberOfWorkers") or 2)
        dpus = dpu_per_worker.get(worker, 1) * workers
        flex = job.inputs.get("executionClass") == "FLEX"
        rate = self.p("glue_flex_dpu_hour" if flex else "glue_dpu_hour")
        hours = max(self.a.stage_minutes, 1) / 60
        basis = f"Glue {workers:g} x {worker} = {dpus:g} DPU x {self.a.stage_minutes:g} min{' (FLEX)' if flex else ''}"
        return [Item(self.graph.component(job), job.name, job.type, dpus * hours * rate, basis)]

    def _emr(self, name: str, args: Mapping[str, Any]) -> Item:
        submit = ((args.get("JobDriver") or {}).get("SparkSubmit") or {}).get("SparkSubmitParameters", "")
        conf = dict(re.findall(r"spark\.([\w.]+)=([\w.]+)", str(submit)))
        executors = float(conf.get("executor.instances", 2))
        cores = float(conf.get("executor.cores", 4)) * executors + float(conf.get("driver.cores", 4))
        memory_text = [conf.get("executor.memory", "14g"), conf.get("driver.memory", "14g")]
        memory = _gb(memory_text[0]) * executors + _gb(memory_text[1])
        hours = max(self.a.stage_minutes, 1) / 60
        cost = hours * (cores * self.p("emr_serverless_vcpu_hour") + memory * self.p("emr_serverless_gb_hour"))
        basis = f"EMR Serverless {cores:g} vCPU + {memory:g} GB x {self.a.stage_minutes:g} min"
        return Item("emr", name, "emr-serverless:startJobRun", cost, basis)

    def _database_time(self, function: Registration) -> list[Item]:
        """A stage run by a component that holds an Aurora cluster keeps it awake: its ACU for the stage."""
        component = self.graph.component(function)
        items = []
        for instance in self.graph.of_type("aws:rds/clusterInstance:ClusterInstance"):
            if self.graph.component(instance) != component:
                continue
            cluster = _cluster_of(instance, self.graph)
            scaling = (cluster.inputs.get("serverlessv2ScalingConfiguration") or {}) if cluster else {}
            acu = max(float(scaling.get("minCapacity", 0.5)), 0.5)
            if float(scaling.get("minCapacity", 0.5)) > 0:
                continue  # an always-on floor is already at rest; scaling above it is not estimated
            hours = self.a.stage_minutes / 60
            cost = acu * hours * self.p("aurora_serverless_v2_acu_hour")
            items.append(
                Item(component, instance.name, instance.type, cost, f"{acu:g} ACU awake {self.a.stage_minutes:g} min")
            )
        return items


def _gb(text: str) -> float:
    match = re.match(r"^([\d.]+)([gGmM]?)$", text)
    if not match:
        return 0.0
    value = float(match.group(1))
    return value / 1024 if match.group(2).lower() == "m" else value


# ---------------------------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------------------------


def estimate(
    evaluation: Evaluation, assumptions: Assumptions | None = None, prices: PriceTable | None = None
) -> Estimate:
    """The estimate of one evaluated stack (update mode: the ARNs the per-run walk follows are resolved)."""
    assumptions = assumptions or Assumptions()
    prices = prices or PriceTable.load(evaluation.config.region or "eu-west-1")
    region = prices.region
    graph = Graph(evaluation)
    priced, free, unpriced = _at_rest(graph, prices)
    pricer = RunPricer(graph, prices, assumptions)
    runs = [pricer.schedule(s) for s in sorted(graph.of_type("aws:scheduler/schedule:Schedule"), key=lambda r: r.name)]
    return Estimate(
        stack=evaluation.config.stack,
        region=region,
        at_rest=tuple(priced),
        free=tuple(free),
        unpriced=tuple(unpriced),
        runs=tuple(runs),
        assumptions=assumptions,
        prices_checked=prices.checked(),
    )


# ---------------------------------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------------------------------


def _money(value: float) -> str:
    if value < 0:
        return "-" + _money(-value)
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


def to_json(estimate: Estimate, base: Estimate | None = None) -> dict[str, Any]:
    def items(values: Iterable[Item]) -> list[dict[str, Any]]:
        return [dataclasses.asdict(item) for item in values]

    data: dict[str, Any] = {
        "stack": estimate.stack,
        "region": estimate.region,
        "pricesChecked": estimate.prices_checked,
        "monthlyAtRest": round(estimate.monthly_at_rest, 4),
        "monthlyRuns": round(estimate.monthly_runs, 4),
        "atRestByComponent": {k: round(v, 4) for k, v in estimate.by_component().items()},
        "atRest": items(estimate.at_rest),
        "free": sorted({item.type for item in estimate.free}),
        "unpriced": items(estimate.unpriced),
        "runs": [
            {
                "schedule": run.schedule,
                "component": run.component,
                "expression": run.expression,
                "runsPerMonth": round(run.runs_per_month, 4),
                "perRun": round(run.per_run, 6),
                "monthly": round(run.monthly, 4),
                "parts": items(run.parts),
            }
            for run in estimate.runs
        ],
        "assumptions": estimate.assumptions.lines(),
    }
    if base is not None:
        data["compare"] = delta(base, estimate)
    return data


def delta(base: Estimate, head: Estimate) -> dict[str, Any]:
    """Monthly at rest and from runs, head minus base, overall and by component."""
    components = sorted(set(base.by_component()) | set(head.by_component()))
    return {
        "base": base.stack,
        "monthlyAtRest": round(head.monthly_at_rest - base.monthly_at_rest, 4),
        "monthlyRuns": round(head.monthly_runs - base.monthly_runs, 4),
        "atRestByComponent": {
            c: round(head.by_component().get(c, 0.0) - base.by_component().get(c, 0.0), 4)
            for c in components
            if abs(head.by_component().get(c, 0.0) - base.by_component().get(c, 0.0)) >= 0.005
        },
    }


def _signed(value: float) -> str:
    return ("+" if value >= 0 else "-") + _money(abs(value))


def to_text(estimate: Estimate, base: Estimate | None = None) -> str:
    lines = [
        f"stack {estimate.stack} ({estimate.region}, list prices as of {estimate.prices_checked}): "
        f"{_money(estimate.monthly_at_rest)} a month at rest, {_money(estimate.monthly_runs)} a month from runs",
        "",
        "at rest, by component:",
    ]
    for component, total in estimate.by_component().items():
        lines.append(f"  {component:<16} {_money(total):>10}")
        for item in (i for i in estimate.at_rest if i.component == component):
            lines.append(f"    {_money(item.monthly):>9}  {item.resource} [{item.type}]: {item.basis}")
    lines += ["", "per run:"]
    for run in estimate.runs:
        lines.append(
            f"  {run.schedule} ({run.expression}, {run.runs_per_month:.1f} runs a month): "
            f"{_money(run.per_run)} a run, {_money(run.monthly)} a month"
        )
        for part in run.parts:
            lines.append(f"    {_money(part.monthly):>9}  {part.resource}: {part.basis}")
    free = sorted({item.type for item in estimate.free})
    lines += ["", f"free at rest ({len(estimate.free)} resources): " + ", ".join(free)]
    if estimate.unpriced:
        lines += ["", "UNPRICED (may cost money; add a rule or a price):"]
        lines += [f"  {item.resource} [{item.type}]: {item.basis}" for item in estimate.unpriced]
    lines += ["", "assumptions:"] + [f"  {line}" for line in estimate.assumptions.lines()]
    if base is not None:
        change = delta(base, estimate)
        lines += [
            "",
            f"compared with {base.stack}: at rest {_signed(change['monthlyAtRest'])} a month, "
            f"runs {_signed(change['monthlyRuns'])} a month",
        ]
        lines += [f"  {c:<16} {_signed(v):>10}" for c, v in change["atRestByComponent"].items()]
    return "\n".join(lines)


def to_markdown(estimate: Estimate, base: Estimate | None = None) -> str:
    lines = [
        f"#### `{estimate.stack}` ({estimate.region}): {_money(estimate.monthly_at_rest)} a month at rest, "
        f"{_money(estimate.monthly_runs)} a month from runs",
        "",
        "| component | at rest a month | what bills |",
        "| --- | ---: | --- |",
    ]
    for component, total in estimate.by_component().items():
        kinds: dict[str, int] = defaultdict(int)
        for item in (i for i in estimate.at_rest if i.component == component):
            kinds[item.type.split(":")[-1]] += 1
        what = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        if component == FREE_TIER:
            what = ", ".join(i.resource for i in estimate.at_rest if i.component == component) + " (the account's)"
        lines.append(f"| {component} | {_money(total)} | {what} |")
    lines += ["", "| schedule | runs a month | a run | a month |", "| --- | ---: | ---: | ---: |"]
    for run in estimate.runs:
        lines.append(
            f"| {run.schedule} (`{run.expression}`) | {run.runs_per_month:.1f} | {_money(run.per_run)} "
            f"| {_money(run.monthly)} |"
        )
    if estimate.unpriced:
        lines += ["", "Unpriced: " + ", ".join(f"{i.resource} ({i.type})" for i in estimate.unpriced)]
    if base is not None:
        change = delta(base, estimate)
        lines += [
            "",
            f"Compared with `{base.stack}`: at rest {_signed(change['monthlyAtRest'])} a month, "
            f"runs {_signed(change['monthlyRuns'])} a month.",
        ]
    return "\n".join(lines)


def render(estimate: Estimate, fmt: str, base: Estimate | None = None) -> str:
    if fmt == "json":
        return json.dumps(to_json(estimate, base), indent=2)
    if fmt == "markdown":
        return to_markdown(estimate, base)
    return to_text(estimate, base)


# ---------------------------------------------------------------------------------------------------------------------
# --compare BASE
# ---------------------------------------------------------------------------------------------------------------------

_STACK_FILE = re.compile(r"^Pulumi\.([A-Za-z0-9_.-]+)\.yaml$")


@contextlib.contextmanager
def stack_file_project(base: str, project_dir: Path) -> Iterator[tuple[Path, str]]:
    """The project directory and stack name `base` names, for `--compare`.

    `REV:Pulumi.<stack>.yaml`: the whole tree at git revision REV (`git archive`), so the delta covers both the code
    and the stack file between two commits. A path to a `Pulumi.<stack>.yaml`: that file beside this project's
    `Pulumi.yaml` and `__main__.py`, evaluated with the code being estimated (the delta of the stack files alone).
    """
    revision, _, path = base.partition(":") if ":" in base and not Path(base).exists() else ("", "", base)
    match = _STACK_FILE.match(Path(path).name)
    if not match:
        raise CostError(
            f"--compare {base!r}: expected a stack file named Pulumi.<stack>.yaml, or REV:Pulumi.<stack>.yaml"
        )
    with tempfile.TemporaryDirectory(prefix="etlctl-cost-") as temp:
        directory = Path(temp)
        if revision:
            archive = subprocess.run(
                ["git", "archive", "--format=tar", revision], cwd=project_dir, capture_output=True, check=False
            )
            if archive.returncode != 0:
                message = archive.stderr.decode(errors="replace").strip() or f"exit {archive.returncode}"
                raise CostError(f"--compare {base!r}: git archive failed: {message}")
            with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
                tar.extractall(directory, filter="data")
            if not (directory / path).is_file():
                raise CostError(f"--compare {base!r}: revision {revision} has no {path}")
            if Path(path).parent != Path("."):
                raise CostError(
                    f"--compare {base!r}: the stack file must be at the project root, e.g. HEAD~1:{Path(path).name}"
                )
        else:
            file = Path(path) if Path(path).is_absolute() else Path.cwd() / path
            if not file.is_file():
                raise CostError(
                    f"--compare {base!r}: no such file; give a Pulumi.<stack>.yaml path or REV:Pulumi.<stack>.yaml"
                )
            shutil.copy(project_dir / "Pulumi.yaml", directory / "Pulumi.yaml")
            shutil.copy(project_dir / "__main__.py", directory / "__main__.py")
            (directory / f"Pulumi.{match.group(1)}.yaml").write_text(file.read_text())
        yield directory, match.group(1)


# ---------------------------------------------------------------------------------------------------------------------
# The README's cost tables (`make cost-table`)
# ---------------------------------------------------------------------------------------------------------------------

README_BEGIN = "<!-- cost-table:begin (make cost-table) -->"
README_END = "<!-- cost-table:end -->"


def readme_tables(project_dir: Path) -> str:
    """The markdown table of every stack file, in `available_stacks` order, as the README holds it."""
    from etlctl.offline import evaluate
    from etlctl.stack_config import available_stacks

    stacks = available_stacks(project_dir)
    return "\n\n".join(render(estimate(evaluate(s, project_dir=project_dir)), "markdown") for s in stacks)


def update_readme(project_dir: Path | None = None) -> None:
    """Replace what stands between the README's cost-table markers with the tables of today's stack files."""
    from etlctl.offline import PROJECT_DIR

    root = project_dir or PROJECT_DIR
    readme = root / "README.md"
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise CostError(f"{readme} lacks the markers {README_BEGIN} ... {README_END}")
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_BEGIN}\n{readme_tables(root)}\n{README_END}{tail}")
