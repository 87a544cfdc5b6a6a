"""The policy pack driven through its analyzer protocol, exactly as the engine drives it: started as a process that
prints its port, then GetAnalyzerInfo, Configure, Analyze for each resource and AnalyzeStack for the whole stack, with
each resource's planned state, options and dependencies from the offline preview of every stack file.

This also guards `policy/__main__.py`'s unwrapping of pulumi-policy's unknown-checking and secret proxies (private
classes of pulumi-policy): only a real server hands the checks proxies built from wire-format properties."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2

from policy.controls import RESOURCE_CHECKS, STACK_CHECKS
from tests.support.analyzer import analyze_request, diagnostics, running_pack, stack_resource
from tests.support.resources import named
from tests.support.stacks import STACKS, evaluated

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}
POLICY_NAMES = [c.name for c in RESOURCE_CHECKS] + [c.name for c in STACK_CHECKS]


def configure(stub: Any) -> None:
    """What the engine sends after reading the pack's info: every policy at its (mandatory) level."""
    stub.Configure(
        analyzer_pb2.ConfigureAnalyzerRequest(
            policyConfig={
                name: analyzer_pb2.PolicyConfig(enforcementLevel=analyzer_pb2.MANDATORY) for name in POLICY_NAMES
            }
        )
    )


def test_the_pack_describes_every_control_as_a_mandatory_policy() -> None:
    with running_pack("prod", preview=False) as stub:
        info = stub.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "etl-platform-controls"
    assert [p.name for p in info.policies] == POLICY_NAMES
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}
    kinds = {p.name: p.policy_type for p in info.policies}
    assert {kinds[c.name] for c in RESOURCE_CHECKS} == {analyzer_pb2.POLICY_TYPE_RESOURCE}
    assert {kinds[c.name] for c in STACK_CHECKS} == {analyzer_pb2.POLICY_TYPE_STACK}


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_passes_the_pack_as_the_engine_runs_it(stack: str, preview: bool) -> None:
    evaluation = evaluated(stack, preview=preview)
    custom = [r for r in evaluation.registrations if r.custom]
    with running_pack(stack, preview=preview) as stub:
        configure(stub)
        reported = [d for r in custom for d in diagnostics(stub.Analyze(analyze_request(evaluation, r)))]
        resources = [stack_resource(evaluation, r) for r in evaluation.registrations]
        reported += diagnostics(stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources)))
    assert len(custom) > 50
    assert reported == []


Props = dict[str, Any]


def _json_edit(key: str, change: Callable[[Any], None]) -> Callable[[Props], None]:
    def apply(props: Props) -> None:
        document = json.loads(props[key])
        change(document)
        props[key] = json.dumps(document)

    return apply


def _drop_statement(sid: str) -> Callable[[Any], None]:
    def change(document: Any) -> None:
        document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != sid]

    return change


@dataclass
class Mutation:
    label: str
    stack: str
    preview: bool
    resource: str
    mutate: Callable[[Props], None]
    expected: list[tuple[str, str]]
    """(policy, last line of the message) of every diagnostic."""

    def __str__(self) -> str:
        return self.label


MUTATIONS = [
    Mutation("rotation-off", "prod", False, "encryption-key", lambda p: p.update(enableKeyRotation=False),
             [("etl-8-kms-rotation", "enableKeyRotation must be true")]),
    Mutation("rotation-off-as-secret", "prod", False, "encryption-key",
             lambda p: p.update(enableKeyRotation={**SECRET_SIG, "value": False}),
             [("etl-8-kms-rotation", "enableKeyRotation must be true")]),
    Mutation("rotation-off-policy-unknown", "prod", True, "encryption-key",
             lambda p: p.update(enableKeyRotation=False, policy=UNKNOWN),
             [("etl-8-kms-rotation", "enableKeyRotation must be true")]),
    Mutation("bucket-policy-without-tls", "dev", False, "lake-raw-policy",
             _json_edit("policy", _drop_statement("DenyInsecureTransport")),
             [("etl-3-s3-tls-only-policy",
               "no statement denies s3:* without TLS (aws:SecureTransport=false) on the bucket and its objects")]),
    Mutation("nested-unknown-skipped", "staging", True, "network-flow-log",
             lambda p: p.update(trafficType="REJECT", logDestination=UNKNOWN),
             [("etl-56-vpc-flow-logs-all", "trafficType is REJECT, not ALL")]),
]  # fmt: skip


@pytest.mark.parametrize("case", MUTATIONS, ids=str)
def test_a_mutated_resource_is_reported_by_its_policy(case: Mutation) -> None:
    evaluation = evaluated(case.stack, preview=case.preview)
    resource = named(evaluation, case.resource)
    props = copy.deepcopy(resource.wire_inputs)
    case.mutate(props)
    with running_pack(case.stack, preview=case.preview) as stub:
        configure(stub)
        assert diagnostics(stub.Analyze(analyze_request(evaluation, resource))) == [], "the recorded resource passes"
        response = stub.Analyze(analyze_request(evaluation, resource, props))
    found = [(d.policyName, d.message.splitlines()[-1]) for d in response.diagnostics]
    assert found == case.expected
    assert {d.enforcementLevel for d in response.diagnostics} == {analyzer_pb2.MANDATORY}
    assert all(d.policyPackName == "etl-platform-controls" for d in response.diagnostics)


def test_analyze_stack_reports_an_unprotected_prod_bucket_and_a_bucket_missing_its_companion() -> None:
    evaluation = evaluated("prod")
    raw = named(evaluation, "lake-raw")
    curated = named(evaluation, "lake-curated")
    kept = [r for r in evaluation.registrations if not r.name.endswith("lake-curated-public-access")]
    resources = [stack_resource(evaluation, r, protect=False if r is raw else None) for r in kept]
    with running_pack("prod", preview=False) as stub:
        configure(stub)
        response = stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources))
    assert sorted((d.policyName, d.urn, d.message.splitlines()[-1]) for d in response.diagnostics) == sorted(
        [
            ("etl-prod-protects-state", raw.urn, "etl-platform-lake-raw (aws:s3/bucket:Bucket) is not protected in prod"),
            ("etl-s3-ecr-companions", curated.urn,
             "bucket etl-platform-lake-curated has no public access block (BucketPublicAccessBlock)"),
        ]
    )  # fmt: skip
