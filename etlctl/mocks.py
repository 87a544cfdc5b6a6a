"""Pulumi mocks that answer like AWS would: realistic ids, ARNs and URLs, and the lookups the program makes.

Used by `etlctl preview --offline` and by the unit tests (set once in tests/conftest.py). In preview mode the mocks
return only the inputs, so every computed value (ARNs, ids) stays unknown, as in a real `pulumi preview`.
A `RecordingMonitor` keeps what a real engine would see of each registration: type, name, parent, options, inputs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import threading
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs

ACCOUNT_ID = "123456789012"

_ID_PREFIX = {
    "aws:ec2/vpc:Vpc": "vpc-",
    "aws:ec2/subnet:Subnet": "subnet-",
    "aws:ec2/securityGroup:SecurityGroup": "sg-",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg-",
    "aws:ec2/routeTable:RouteTable": "rtb-",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc-",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce-",
    "aws:ec2/internetGateway:InternetGateway": "igw-",
    "aws:ec2/natGateway:NatGateway": "nat-",
    "aws:ec2/eip:Eip": "eipalloc-",
    "aws:ec2/flowLog:FlowLog": "fl-",
    "aws:ec2/instance:Instance": "i-",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt-",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr-",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr-",
}


_GLUE_NAMED = {
    "aws:glue/job:Job": "job",
    "aws:glue/crawler:Crawler": "crawler",
    "aws:glue/dataQualityRuleset:DataQualityRuleset": "dataQualityRuleset",
}


def _hex(seed: str, length: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def _uuid(seed: str) -> str:
    h = _hex(seed, 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class PlatformMocks(pulumi.runtime.Mocks):
    def __init__(self, region: str = "eu-west-1", account_id: str = ACCOUNT_ID, preview: bool = False) -> None:
        self.region = region
        self.account_id = account_id
        self.preview = preview

    # ------------------------------------------------------------------------------------------------------------
    def call(self, args: MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        token, region, account = args.token, self.region, self.account_id
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": account,
                "arn": f"arn:aws:iam::{account}:user/offline-preview",
                "userId": "AIDAOFFLINEPREVIEW",
                "id": account,
            }
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws", "id": "aws"}
        if token == "aws:index/getRegion:getRegion":
            return {"name": region, "region": region, "endpoint": f"ec2.{region}.amazonaws.com", "id": region}
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{region}{suffix}" for suffix in "abc"]
            return {"names": names, "zoneIds": [f"euw1-az{i}" for i in (1, 2, 3)], "id": region}
        if token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {
                "authorizationToken": "QVdTOm9mZmxpbmUtcHJldmlldw==",
                "userName": "AWS",
                "password": "offline-preview-token",
                "proxyEndpoint": f"https://{account}.dkr.ecr.{region}.amazonaws.com",
                "expiresAt": "2099-01-01T00:00:00Z",
                "id": region,
            }
        return {}

    # ------------------------------------------------------------------------------------------------------------
    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        if not args.custom and not args.typ.startswith("pulumi:providers:"):
            return f"{args.name}-component", inputs
        if args.typ.startswith("pulumi:providers:"):
            return f"{args.name}-provider-id", inputs
        if self.preview:
            # A real preview knows the inputs; everything the provider computes is unknown.
            return "", inputs
        return self._created(args.typ, args.name, inputs)

    def _created(self, typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        region, account = self.region, self.account_id
        physical = f"{name}-{_hex(typ + name, 7)}"
        service = typ.split(":")[1].split("/")[0]
        kind = typ.split(":")[-1]
        state = dict(inputs)
        arn = f"arn:aws:{service}:{region}:{account}:{kind.lower()}/{physical}"
        rid = physical

        if typ in _ID_PREFIX:
            rid = _ID_PREFIX[typ] + _hex(typ + name, 17)
            arn = f"arn:aws:ec2:{region}:{account}:{kind.lower()}/{rid}"
            if typ == "aws:ec2/instance:Instance":
                # What a route to the instance (a NAT instance) names: its primary network interface.
                state["primaryNetworkInterfaceId"] = "eni-" + _hex(typ + name + "eni", 17)
            if typ == "aws:ec2/vpcEndpoint:VpcEndpoint" and inputs.get("vpcEndpointType") == "Gateway":
                state["prefixListId"] = "pl-" + _hex("prefix-list" + name, 8)
        elif typ == "aws:s3/bucket:Bucket":
            bucket = inputs.get("bucket") or physical
            rid, arn = bucket, f"arn:aws:s3:::{bucket}"
            state.update(
                bucket=bucket,
                bucketDomainName=f"{bucket}.s3.amazonaws.com",
                bucketRegionalDomainName=f"{bucket}.s3.{region}.amazonaws.com",
                region=region,
            )
        elif typ == "aws:kms/key:Key":
            rid = _uuid(name)
            arn = f"arn:aws:kms:{region}:{account}:key/{rid}"
            state["keyId"] = rid
        elif typ == "aws:kms/alias:Alias":
            rid = inputs.get("name", f"alias/{physical}")
            arn = f"arn:aws:kms:{region}:{account}:{rid}"
        elif typ == "aws:sns/topic:Topic":
            topic = inputs.get("name") or physical
            arn = f"arn:aws:sns:{region}:{account}:{topic}"
            rid = arn
            state["name"] = topic
        elif typ == "aws:sns/topicSubscription:TopicSubscription":
            arn = f"{inputs.get('topic', f'arn:aws:sns:{region}:{account}:topic')}:{_uuid(name)}"
            rid = arn
        elif typ == "aws:sqs/queue:Queue":
            queue = inputs.get("name") or (physical + (".fifo" if inputs.get("fifoQueue") else ""))
            rid = f"https://sqs.{region}.amazonaws.com/{account}/{queue}"
            arn = f"arn:aws:sqs:{region}:{account}:{queue}"
            state.update(name=queue, url=rid)
        elif typ in ("aws:iam/role:Role", "aws:iam/policy:Policy"):
            role = inputs.get("name") or physical
            arn = f"arn:aws:iam::{account}:{kind.lower()}/{role}"
            rid = role if kind == "Role" else arn
            state.update(name=role, uniqueId="AROA" + _hex(name, 17).upper())
        elif typ == "aws:lambda/function:Function":
            function = inputs.get("name") or physical
            arn = f"arn:aws:lambda:{region}:{account}:function:{function}"
            rid = function
            state.update(
                name=function,
                invokeArn=f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations",
                qualifiedArn=f"{arn}:1",
                version="1",
                sourceCodeHash=inputs.get("sourceCodeHash") or _hex(name, 44),
            )
        elif typ == "aws:lambda/layerVersion:LayerVersion":
            layer = inputs.get("layerName") or physical
            arn = f"arn:aws:lambda:{region}:{account}:layer:{layer}:1"
            rid = arn
            state.update(layerArn=f"arn:aws:lambda:{region}:{account}:layer:{layer}", version="1")
        elif typ == "aws:cloudwatch/logGroup:LogGroup":
            group = inputs.get("name") or physical
            rid, arn = group, f"arn:aws:logs:{region}:{account}:log-group:{group}"
            state["name"] = group
        elif typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
            alarm = inputs.get("name") or physical
            rid, arn = alarm, f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm}"
            state["name"] = alarm
        elif typ == "aws:cloudwatch/eventRule:EventRule":
            rule = inputs.get("name") or physical
            rid, arn = rule, f"arn:aws:events:{region}:{account}:rule/{rule}"
            state["name"] = rule
        elif typ == "aws:cloudwatch/dashboard:Dashboard":
            rid = inputs.get("dashboardName", physical)
            arn = f"arn:aws:cloudwatch::{account}:dashboard/{rid}"
        elif typ == "aws:ecr/repository:Repository":
            repo = inputs.get("name") or physical
            rid, arn = repo, f"arn:aws:ecr:{region}:{account}:repository/{repo}"
            state.update(
                name=repo, registryId=account, repositoryUrl=f"{account}.dkr.ecr.{region}.amazonaws.com/{repo}"
            )
        elif typ == "aws:ecs/cluster:Cluster":
            cluster = inputs.get("name") or physical
            arn = f"arn:aws:ecs:{region}:{account}:cluster/{cluster}"
            rid = arn
            state["name"] = cluster
        elif typ == "aws:ecs/taskDefinition:TaskDefinition":
            family = inputs.get("family") or physical
            arn = f"arn:aws:ecs:{region}:{account}:task-definition/{family}:1"
            rid = family
            state.update(revision=1, arnWithoutRevision=f"arn:aws:ecs:{region}:{account}:task-definition/{family}")
        elif typ == "aws:sfn/stateMachine:StateMachine":
            machine = inputs.get("name") or physical
            arn = f"arn:aws:states:{region}:{account}:stateMachine:{machine}"
            rid = arn
            state.update(name=machine, stateMachineVersionArn=f"{arn}:1")
        elif typ == "aws:scheduler/schedule:Schedule":
            schedule = inputs.get("name") or physical
            group = inputs.get("groupName", "default")
            arn = f"arn:aws:scheduler:{region}:{account}:schedule/{group}/{schedule}"
            rid = f"{group}/{schedule}"
            state["name"] = schedule
        elif typ == "aws:glue/catalogDatabase:CatalogDatabase":
            database = inputs.get("name") or physical
            arn = f"arn:aws:glue:{region}:{account}:database/{database}"
            rid = f"{account}:{database}"
        elif typ in _GLUE_NAMED:
            # Glue names its jobs, crawlers and rulesets as given; the ARN ends with the name.
            glue_name = inputs.get("name") or physical
            arn = f"arn:aws:glue:{region}:{account}:{_GLUE_NAMED[typ]}/{glue_name}"
            rid = glue_name
            state["name"] = glue_name
        elif typ == "aws:glue/catalogTable:CatalogTable":
            table = inputs.get("name") or physical
            arn = f"arn:aws:glue:{region}:{account}:table/{inputs.get('databaseName')}/{table}"
            rid = f"{account}:{inputs.get('databaseName')}:{table}"
        elif typ == "aws:s3/bucketObjectv2:BucketObjectv2":
            rid = f"{inputs.get('bucket')}/{inputs.get('key')}"
            state["versionId"] = _hex("version" + name, 32)
        elif typ == "aws:signer/signingProfile:SigningProfile":
            profile = inputs.get("name") or f"{inputs.get('namePrefix', '')}{_hex(name, 12)}"
            arn = f"arn:aws:signer:{region}:{account}:/signing-profiles/{profile}"
            rid = profile
            state.update(name=profile, version=_hex("v" + name, 10), versionArn=f"{arn}/{_hex('v' + name, 10)}")
        elif typ == "aws:signer/signingJob:SigningJob":
            rid = _uuid(name)
            destination = inputs.get("destination", {}).get("s3", {})
            signed = {"bucket": destination.get("bucket", ""), "key": f"{destination.get('prefix', '')}{rid}.zip"}
            state.update(jobId=rid, signedObjects=[{"s3s": [signed]}], status="Succeeded")
        elif typ == "aws:lambda/codeSigningConfig:CodeSigningConfig":
            rid = "csc-" + _hex(name, 17)
            arn = f"arn:aws:lambda:{region}:{account}:code-signing-config:{rid}"
            state["configId"] = rid
        elif typ == "aws:rds/cluster:Cluster":
            # RDS names clusters `cluster:<id>` in ARNs; with a managed master password it creates the secret itself.
            cluster = inputs.get("clusterIdentifier") or physical
            rid, arn = cluster, f"arn:aws:rds:{region}:{account}:cluster:{cluster}"
            suffix = _hex("cluster" + name, 6)
            secrets = []
            if inputs.get("manageMasterUserPassword"):
                secret = f"rds!cluster-{_uuid(name)}-{suffix}"
                secrets = [
                    {
                        "secretArn": f"arn:aws:secretsmanager:{region}:{account}:secret:{secret}",
                        "kmsKeyId": inputs.get("masterUserSecretKmsKeyId", ""),
                        "secretStatus": "active",
                    }
                ]
            state.update(
                clusterIdentifier=cluster,
                clusterResourceId="cluster-" + _hex("resource" + name, 26).upper(),
                endpoint=f"{cluster}.cluster-{suffix}.{region}.rds.amazonaws.com",
                readerEndpoint=f"{cluster}.cluster-ro-{suffix}.{region}.rds.amazonaws.com",
                masterUserSecrets=secrets,
                engineVersionActual=inputs.get("engineVersion", ""),
            )
        elif typ == "aws:rds/clusterInstance:ClusterInstance":
            instance = inputs.get("identifier") or physical
            rid, arn = instance, f"arn:aws:rds:{region}:{account}:db:{instance}"
            state.update(identifier=instance, writer=inputs.get("promotionTier") == 0)
        elif typ in ("aws:rds/subnetGroup:SubnetGroup", "aws:rds/clusterParameterGroup:ClusterParameterGroup"):
            group = inputs.get("name") or physical
            prefix = "subgrp" if typ == "aws:rds/subnetGroup:SubnetGroup" else "cluster-pg"
            rid, arn = group, f"arn:aws:rds:{region}:{account}:{prefix}:{group}"
            state["name"] = group
        elif typ == "aws:emrserverless/application:Application":
            rid = "00" + _hex(name, 14)
            arn = f"arn:aws:emr-serverless:{region}:{account}:/applications/{rid}"
            state["name"] = inputs.get("name") or physical
        elif typ == "aws:emr/securityConfiguration:SecurityConfiguration":
            rid = inputs.get("name") or physical
            state["name"] = rid
        elif typ == "aws:iam/instanceProfile:InstanceProfile":
            profile = inputs.get("name") or physical
            rid, arn = profile, f"arn:aws:iam::{account}:instance-profile/{profile}"
            state["name"] = profile
        elif typ == "aws:redshiftserverless/namespace:Namespace":
            # Redshift Serverless ARNs carry a generated id; a managed admin password gets a secret of its own.
            namespace = inputs.get("namespaceName") or physical
            rid, arn = namespace, f"arn:aws:redshift-serverless:{region}:{account}:namespace/{_uuid(name)}"
            state.update(namespaceName=namespace, namespaceId=_uuid(name))
            if inputs.get("manageAdminPassword"):
                secret = f"redshift!{namespace}-admin-{_hex(name, 6)}"
                state["adminPasswordSecretArn"] = f"arn:aws:secretsmanager:{region}:{account}:secret:{secret}"
        elif typ == "aws:redshiftserverless/workgroup:Workgroup":
            workgroup = inputs.get("workgroupName") or physical
            rid, arn = workgroup, f"arn:aws:redshift-serverless:{region}:{account}:workgroup/{_uuid(name)}"
            state.update(workgroupName=workgroup, workgroupId=_uuid(name))
        elif typ.startswith("docker:") and kind == "Image":
            image = inputs.get("imageName", f"{physical}:latest")
            repository = image.rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image
            digest = "sha256:" + hashlib.sha256(image.encode()).hexdigest()
            state.update(imageName=image, repoDigest=f"{repository}@{digest}")
            return image, state
        state.setdefault("arn", arn)
        if "name" not in inputs and typ not in _ID_PREFIX and "name" not in state:
            state["name"] = physical
        return rid, state


@dataclasses.dataclass
class Registration:
    """One resource as the engine would see it: what the program sent and what the mocks answered."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    protect: bool
    retain_on_delete: bool
    provider: str
    dependencies: list[str]
    inputs: dict[str, Any]
    property_dependencies: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    """Input property -> the URNs its value came from (what the engine hands policies as property dependencies)."""
    wire_inputs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The inputs exactly as serialized on the wire (JSON of the protobuf Struct): unknowns as Pulumi's unknown
    sentinel, assets and secrets as their signature objects, every number a float. What an analyzer receives."""
    outputs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The state the mocks answered with (ids, ARNs, URLs in update mode; the inputs alone in preview mode)."""
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The other resource options the engine receives: deleteBeforeReplace, aliases, ignoreChanges,
    additionalSecretOutputs, customTimeouts (only those the program set)."""


def _options(request: Any) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if request.deleteBeforeReplaceDefined:
        options["deleteBeforeReplace"] = bool(request.deleteBeforeReplace)
    from google.protobuf import json_format

    # With alias specs supported (the mock monitor says so) the SDK sends each alias as a URN or a spec object.
    aliases = [{"urn": urn} for urn in request.aliasURNs] + [json_format.MessageToDict(a) for a in request.aliases]
    if aliases:
        options["aliases"] = sorted(aliases, key=lambda alias: json.dumps(alias, sort_keys=True))
    if request.ignoreChanges:
        options["ignoreChanges"] = sorted(request.ignoreChanges)
    if request.additionalSecretOutputs:
        options["additionalSecretOutputs"] = sorted(request.additionalSecretOutputs)
    if request.HasField("customTimeouts"):
        timeouts = request.customTimeouts
        options["customTimeouts"] = {
            key: value for key in ("create", "update", "delete") if (value := getattr(timeouts, key))
        }
    return options


class RecordingMonitor(MockMonitor):
    """The stock mock monitor, keeping every registration with its options and the mocks' answer.

    The stock monitor gives each SDK RPC thread an event loop of its own (to deserialize resource references) and
    never closes it; `close_thread_loops()` closes them once the run's threads are done, so none is left to be
    finalized at interpreter exit (see `etlctl.offline`).
    """

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self._thread_loops: set[asyncio.AbstractEventLoop] = set()
        self._lock = threading.Lock()

    def _keep_thread_loop(self) -> None:
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_event_loop_policy().get_event_loop()
            if not loop.is_running():
                with self._lock:
                    self._thread_loops.add(loop)

    def close_thread_loops(self) -> int:
        """Close the loops the RPC threads were given; how many there were."""
        with self._lock:
            loops, self._thread_loops = self._thread_loops, set()
        for loop in loops:
            loop.close()
        return len(loops)

    def Invoke(self, request: Any) -> Any:
        try:
            return super().Invoke(request)
        finally:
            self._keep_thread_loop()

    def ReadResource(self, request: Any) -> Any:
        try:
            return super().ReadResource(request)
        finally:
            self._keep_thread_loop()

    def RegisterResource(self, request: Any) -> Any:
        try:
            return self._register(request)
        finally:
            self._keep_thread_loop()

    def _register(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            from google.protobuf import json_format
            from pulumi.runtime import rpc

            self.registrations.append(
                Registration(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent,
                    custom=bool(request.custom),
                    protect=bool(request.protect),
                    retain_on_delete=bool(request.retainOnDelete),
                    provider=request.provider,
                    dependencies=list(request.dependencies),
                    inputs=rpc.deserialize_properties(request.object),
                    property_dependencies={
                        key: sorted(value.urns) for key, value in request.propertyDependencies.items()
                    },
                    wire_inputs=json_format.MessageToDict(request.object),
                    outputs=rpc.deserialize_properties(response.object),
                    options=_options(request),
                )
            )
        return response

    def clear(self) -> None:
        self.resources.clear()
        self.registrations.clear()
