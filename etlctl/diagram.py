"""The stack's data flow as a mermaid diagram: who reads, writes and invokes whom, grouped by component.

`data_flow()` reads the wiring from an update-mode evaluation (where the mocks resolved every ARN):
- each compute resource's role (Lambda function, ECS task, state machine, schedule) and the actions its inline
  policies allow on resources of the stack: reads (s3:Get*, sqs:ReceiveMessage, rds-data:ExecuteStatement, ...),
  writes (s3:Put*, sqs:SendMessage, sns:Publish, rds-data:BatchExecuteStatement, ...), invokes
  (lambda:InvokeFunction, states:StartExecution, ecs:RunTask, ...); a database login reads and writes its cluster:
  `rds-db:connect` on a user of the cluster (`dbuser:<cluster resource id>/...`) or the cluster's master secret;
- event wiring: a queue's or stream's event source mapping triggers its function, a rule or schedule invokes its
  target, a bucket's events reach the rule whose pattern names it, a Firehose delivery stream reads its source
  stream and writes its bucket; failures go to dead-letter queues and destinations.
Encryption keys, log groups, alarms, tracing and `iam:PassRole` are not data flow and are left out, so the key and
the monitoring topic are not linked to every node.

`render_mermaid()` draws one subgraph per component that holds a node (nested as the components are), short labels
(the name within its component; the kind of resource when that name says nothing more), shapes by kind, and
deterministic ids and order, so the same stack always renders the same bytes. `architecture=` keeps the nodes of one
architecture and the ones they read, write or invoke (`--architecture NAME`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from etlctl.mocks import Registration
from etlctl.offline import Evaluation
from etlctl.render import architecture_component, subtree

ROLE_OF = {
    "aws:lambda/function:Function": ("role",),
    "aws:ecs/taskDefinition:TaskDefinition": ("taskRoleArn",),
    "aws:sfn/stateMachine:StateMachine": ("roleArn",),
    "aws:scheduler/schedule:Schedule": ("target", "roleArn"),
    "aws:glue/job:Job": ("roleArn",),
    "aws:glue/crawler:Crawler": ("role",),
    "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream": ("kinesisSourceConfiguration", "roleArn"),
    # The role of an EMR cluster's instances (by name): what every step on the transient cluster may touch.
    "aws:iam/instanceProfile:InstanceProfile": ("role",),
}
TRUSTED_BY = {"aws:emrserverless/application:Application"}
"""Resources whose roles are not an input of theirs but trust them (`aws:SourceArn`): EMR Serverless job roles."""
"""Compute resources and where their role ARN sits (the ECS execution role pulls images and writes logs only)."""

INVOKE_ACTIONS = {
    "lambda:InvokeFunction",
    "states:StartExecution",
    "states:StartSyncExecution",
    "ecs:RunTask",
    "glue:StartJobRun",
    "glue:StartWorkflowRun",
    "emr-serverless:StartJobRun",
    "elasticmapreduce:AddJobFlowSteps",
}
READ_PREFIXES = (
    "s3:Get",
    "s3:List",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "dynamodb:Get",
    "dynamodb:BatchGet",
    "dynamodb:Query",
    "dynamodb:Scan",
    "kinesis:Get",
    "glue:Get",
    "secretsmanager:GetSecretValue",
    # The Data API: a statement reads, a batch writes (a role holding both draws "reads, writes").
    "rds-data:ExecuteStatement",
)
WRITE_PREFIXES = (
    "s3:Put",
    "s3:Delete",
    "s3:AbortMultipartUpload",
    "sqs:SendMessage",
    "sns:Publish",
    "dynamodb:Put",
    "dynamodb:Update",
    "dynamodb:Delete",
    "dynamodb:BatchWrite",
    "kinesis:Put",
    "firehose:Put",
    "events:PutEvents",
    "glue:Create",
    "glue:Update",
    "glue:BatchCreate",
    "glue:BatchUpdate",
    "rds-data:BatchExecuteStatement",
)
# A login opens a connection that reads and writes: IAM database authentication, or the cluster's master secret.
LOGIN_ACTIONS = frozenset({"rds-db:connect", "secretsmanager:GetSecretValue"})
VERBS = ("invokes", "triggers", "reads", "writes", "events", "on failure", "dead letters")
"""Edge labels, in the order they are listed when one pair has several."""

_SHAPES = {
    "aws:s3/bucket:Bucket": ("[(", ")]"),
    "aws:sqs/queue:Queue": (">", "]"),
    "aws:sns/topic:Topic": (">", "]"),
    "aws:lambda/function:Function": ("(", ")"),
    "aws:ecs/taskDefinition:TaskDefinition": ("[", "]"),
    "aws:sfn/stateMachine:StateMachine": ("{{", "}}"),
    "aws:scheduler/schedule:Schedule": ("([", "])"),
    "aws:cloudwatch/eventRule:EventRule": ("([", "])"),
    "aws:glue/job:Job": ("[[", "]]"),
    "aws:glue/crawler:Crawler": ("[/", "/]"),
    "aws:glue/catalogDatabase:CatalogDatabase": ("[(", ")]"),
    "aws:glue/catalogTable:CatalogTable": ("[(", ")]"),
    "aws:rds/cluster:Cluster": ("[(", ")]"),
    "aws:kinesis/stream:Stream": ("[[", "]]"),
    "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream": ("[/", "/]"),
    "aws:opensearch/serverlessCollection:ServerlessCollection": ("[(", ")]"),
    "aws:emrserverless/application:Application": ("[[", "]]"),
    "aws:iam/instanceProfile:InstanceProfile": ("[[", "]]"),
}
_KIND = {
    "aws:s3/bucket:Bucket": "S3 bucket",
    "aws:sqs/queue:Queue": "SQS queue",
    "aws:sns/topic:Topic": "SNS topic",
    "aws:lambda/function:Function": "Lambda",
    "aws:ecs/taskDefinition:TaskDefinition": "ECS task",
    "aws:sfn/stateMachine:StateMachine": "state machine",
    "aws:scheduler/schedule:Schedule": "schedule",
    "aws:cloudwatch/eventRule:EventRule": "event rule",
    "aws:glue/job:Job": "Glue job",
    "aws:glue/crawler:Crawler": "Glue crawler",
    "aws:glue/catalogDatabase:CatalogDatabase": "Glue database",
    "aws:glue/catalogTable:CatalogTable": "Glue table",
    "aws:rds/cluster:Cluster": "Aurora cluster",
    "aws:kinesis/stream:Stream": "Kinesis stream",
    "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream": "Firehose",
    "aws:opensearch/serverlessCollection:ServerlessCollection": "OpenSearch collection",
    "aws:emrserverless/application:Application": "EMR Serverless application",
    "aws:iam/instanceProfile:InstanceProfile": "EMR cluster instances",
}
_SAYS_NOTHING = {
    "function",
    "machine",
    "schedule",
    "topic",
    "queue",
    "bucket",
    "task",
    "job",
    "crawler",
    "cluster",
    "stream",
}


@dataclasses.dataclass(frozen=True, order=True)
class Edge:
    source: str
    """URN of the resource that acts (or whose events flow)."""
    target: str
    verb: str


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


class _Index:
    """Resources of the stack by the identifiers others use for them: ARN, name, id, queue URL."""

    def __init__(self, registrations: Iterable[Registration]) -> None:
        self.by_ref: dict[str, Registration] = {}
        self.logins: dict[str, Registration] = {}
        """A cluster by its resource id (what `rds-db:connect` names) and by its master secret's ARN."""
        for registration in registrations:
            if not registration.custom or registration.type.startswith("pulumi:providers:"):
                continue
            outputs = registration.outputs
            for key in ("arn", "arnWithoutRevision", "url", "bucket", "name", "id"):
                value = outputs.get(key)
                if isinstance(value, str) and value:
                    self.by_ref.setdefault(value, registration)
            if registration.type == "aws:rds/cluster:Cluster":
                resource_id = outputs.get("clusterResourceId")
                if isinstance(resource_id, str) and resource_id:
                    self.logins[resource_id] = registration
                for secret in _listed(outputs.get("masterUserSecrets")):
                    arn = _get(secret, "secretArn")
                    if isinstance(arn, str) and arn:
                        self.logins[arn] = registration

    def login(self, ref: Any) -> Registration | None:
        """The cluster a login names: `arn:...:rds-db:...:dbuser:<resource id>/<user>` or its master secret."""
        if not isinstance(ref, str):
            return None
        match = re.fullmatch(r"arn:[^:]+:rds-db:[^:]*:[^:]*:dbuser:([^/]+)/.+", ref)
        return self.logins.get(match[1] if match else ref)

    def find(self, ref: Any) -> Registration | None:
        """The resource `ref` names: exactly, or as a bucket's objects (`arn/*`), a function's or task
        definition's versions (`arn:*`, `arn:3`)."""
        if not isinstance(ref, str):
            return None
        candidates = [ref, ref.split("/", 1)[0] if ref.startswith("arn:aws:s3:::") else ref]
        candidates.append(re.sub(r":(\*|\d+)$", "", ref))
        for candidate in candidates:
            if candidate in self.by_ref:
                return self.by_ref[candidate]
        return None


def _verb(action: str) -> str | None:
    if action in INVOKE_ACTIONS:
        return "invokes"
    if action.startswith(READ_PREFIXES):
        return "reads"
    if action.startswith(WRITE_PREFIXES):
        return "writes"
    return None


def _role_edges(actor: Registration, role: Registration, policies: list[Registration], index: _Index) -> Iterator[Edge]:
    for policy in policies:
        document = _json(policy.inputs.get("policy"))
        for statement in _listed(_get(document, "Statement")):
            if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
                continue
            actions = [str(action) for action in _listed(statement.get("Action"))]
            verbs = {verb for action in actions if (verb := _verb(action))}
            for ref in _listed(statement.get("Resource")):
                target = index.find(ref)
                if target is not None and target.urn != actor.urn:
                    for verb in verbs:
                        yield Edge(actor.urn, target.urn, verb)
                cluster = index.login(ref) if LOGIN_ACTIONS.intersection(actions) else None
                if cluster is not None:
                    yield Edge(actor.urn, cluster.urn, "reads")
                    yield Edge(actor.urn, cluster.urn, "writes")


def data_flow(evaluation: Evaluation) -> list[Edge]:
    """Every data-flow edge of the stack, sorted and without duplicates."""
    registrations = evaluation.registrations
    index = _Index(registrations)
    roles = {r.outputs.get("arn"): r for r in registrations if r.type == "aws:iam/role:Role"}
    policies_of: dict[str, list[Registration]] = defaultdict(list)
    role_by_name = {r.outputs.get("name"): r for r in roles.values()}
    for registration in registrations:
        if registration.type == "aws:iam/rolePolicy:RolePolicy":
            role = role_by_name.get(registration.inputs.get("role"))
            if role is not None:
                policies_of[role.urn].append(registration)

    edges: set[Edge] = set()
    for registration in registrations:
        inputs = registration.inputs
        path = ROLE_OF.get(registration.type)
        if path is not None:
            ref = _get(inputs, *path)
            role = roles.get(ref) or role_by_name.get(ref)
            if role is not None:
                edges.update(_role_edges(registration, role, policies_of[role.urn], index))
        kind = registration.type
        if kind == "aws:scheduler/schedule:Schedule":
            _link(edges, index, registration, _get(inputs, "target", "arn"), "invokes")
            _link(edges, index, registration, _get(inputs, "target", "deadLetterConfig", "arn"), "on failure")
        elif kind == "aws:cloudwatch/eventTarget:EventTarget":
            rule = index.find(inputs.get("rule"))
            if rule is not None:
                _link(edges, index, rule, inputs.get("arn"), "invokes")
                _link(edges, index, rule, _get(inputs, "deadLetterConfig", "arn"), "on failure")
        elif kind == "aws:cloudwatch/eventRule:EventRule":
            for name in _listed(_get(_json(inputs.get("eventPattern")), "detail", "bucket", "name")):
                bucket = index.find(name)
                if bucket is not None:
                    edges.add(Edge(bucket.urn, registration.urn, "events"))
        elif kind == "aws:lambda/eventSourceMapping:EventSourceMapping":
            source = index.find(inputs.get("eventSourceArn"))
            if source is not None:
                _link(edges, index, source, inputs.get("functionName"), "triggers")
            # A stream source's given-up batches (their shard and range) go to its on-failure destination.
            function = index.find(inputs.get("functionName"))
            if function is not None:
                _link(
                    edges,
                    index,
                    function,
                    _get(inputs, "destinationConfig", "onFailure", "destinationArn"),
                    "on failure",
                )
        elif kind == "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream":
            # Firehose reads its source stream (with its role) and delivers to its destination bucket.
            _link(edges, index, registration, _get(inputs, "extendedS3Configuration", "bucketArn"), "writes")
        elif kind == "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig":
            function = index.find(inputs.get("functionName"))
            if function is not None:
                for outcome in ("onFailure", "onSuccess"):
                    verb = "on failure" if outcome == "onFailure" else "writes"
                    _link(edges, index, function, _get(inputs, "destinationConfig", outcome, "destination"), verb)
        elif kind == "aws:sqs/queue:Queue":
            dead_letters = _get(_json(inputs.get("redrivePolicy")), "deadLetterTargetArn")
            _link(edges, index, registration, dead_letters, "dead letters")
    for role in roles.values():
        trust = _json(role.inputs.get("assumeRolePolicy"))
        for statement in _listed(_get(trust, "Statement")):
            for ref in _listed(_get(statement, "Condition", "ArnLike", "aws:SourceArn")):
                trusted = index.find(ref)
                if trusted is not None and trusted.type in TRUSTED_BY:
                    edges.update(_role_edges(trusted, role, policies_of[role.urn], index))
    # A queue that triggers a function is read by the event source mapping (with the function's role): one edge.
    triggered = {(e.target, e.source) for e in edges if e.verb == "triggers"}
    return sorted(e for e in edges if not (e.verb == "reads" and (e.source, e.target) in triggered))


def _link(edges: set[Edge], index: _Index, source: Registration, ref: Any, verb: str) -> None:
    target = index.find(ref)
    if target is not None and target.urn != source.urn:
        edges.add(Edge(source.urn, target.urn, verb))


# ---------------------------------------------------------------------------------------------------------------------
# Mermaid
# ---------------------------------------------------------------------------------------------------------------------


def _ids(registrations: Iterable[Registration], prefix: str) -> dict[str, str]:
    """Stable mermaid ids from names (`etl-platform-lake-raw` -> `r_etl_platform_lake_raw`), numbered on a clash."""
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for registration in sorted(registrations, key=lambda r: r.urn):
        base = prefix + re.sub(r"[^A-Za-z0-9]+", "_", registration.name).strip("_")
        candidate, n = base, 2
        while candidate in taken:
            candidate, n = f"{base}_{n}", n + 1
        taken.add(candidate)
        ids[registration.urn] = candidate
    return ids


def _label(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def _short(registration: Registration, parent: Registration | None, project: str) -> str:
    """The name within its component; a component named like its parent (or the project) by its kind."""
    name = registration.name
    prefix = parent.name if parent is not None else project
    if name == prefix:
        return registration.type.rsplit(":", 1)[-1].lower()
    return name[len(prefix) + 1 :] if name.startswith(prefix + "-") else name


def render_mermaid(evaluation: Evaluation, architecture: str | None = None) -> str:
    by_urn = {r.urn: r for r in evaluation.registrations}
    project = evaluation.config.project
    edges = data_flow(evaluation)
    if architecture is not None:
        inside = {r.urn for r in subtree(evaluation, architecture_component(evaluation, architecture))}
        edges = [e for e in edges if e.source in inside or e.target in inside]

    verbs: dict[tuple[str, str], set[str]] = defaultdict(set)
    for edge in edges:
        verbs[(edge.source, edge.target)].add(edge.verb)
    nodes = [by_urn[urn] for urn in sorted({urn for pair in verbs for urn in pair})]
    node_ids = _ids(nodes, "r_")

    # Components holding a node, with their ancestors; each node sits in its parent component's subgraph.
    shown: set[str] = set()
    for node in nodes:
        parent = node.parent
        while parent in by_urn:
            shown.add(parent)
            parent = by_urn[parent].parent
    components = [by_urn[urn] for urn in shown]
    component_ids = _ids(components, "c_")
    members: dict[str, list[Registration]] = defaultdict(list)
    for registration in [*nodes, *components]:
        members[registration.parent if registration.parent in shown else ""].append(registration)

    lines = ["flowchart LR"]

    def node_line(node: Registration, indent: str) -> str:
        parent = by_urn.get(node.parent)
        short = _short(node, parent, project)
        text = _KIND.get(node.type, node.type.rsplit(":", 1)[-1]) if short in _SAYS_NOTHING else short
        opening, closing = _SHAPES.get(node.type, ("[", "]"))
        return f"{indent}{node_ids[node.urn]}{opening}{_label(text)}{closing}"

    def emit(parent_urn: str, indent: str) -> None:
        for member in sorted(members.get(parent_urn, []), key=lambda r: (r.urn not in shown, r.name, r.urn)):
            if member.urn in shown:
                title = _short(member, by_urn.get(member.parent), project)
                lines.append(f"{indent}subgraph {component_ids[member.urn]}[{_label(title)}]")
                emit(member.urn, indent + "  ")
                lines.append(f"{indent}end")
            else:
                lines.append(node_line(member, indent))

    emit("", "  ")
    for (source, target), names in sorted(verbs.items(), key=lambda item: (node_ids[item[0][0]], node_ids[item[0][1]])):
        label = ", ".join(verb for verb in VERBS if verb in names)
        lines.append(f"  {node_ids[source]} -->|{label}| {node_ids[target]}")
    return "\n".join(lines)
