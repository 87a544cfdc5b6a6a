"""Drive the policy pack over its analyzer protocol, as the Pulumi engine does, with resources of the offline preview.

`running_pack()` starts `policy/__main__.py` the way the engine's policy host does (the pack prints the port of its
gRPC analyzer server on stdout) and yields an `AnalyzerStub` (the stubs ship in the pulumi package, in
`pulumi.runtime.proto`). `analyze_request()` and `stack_resource()` turn a recorded registration into the messages the
engine sends: its properties in wire form (unknowns as the unknown sentinel, secrets and assets as signature objects),
its options, its provider, its parent and dependencies.
Reference: pulumi/pulumi pkg/resource/plugin/analyzer_plugin.go (Analyze and AnalyzeStack marshal the properties
with unknowns and secrets kept) and proto/pulumi/analyzer.proto.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from etlctl.mocks import Registration
from etlctl.offline import Evaluation
from tests.support.stacks import ROOT


@contextmanager
def running_pack(stack: str, *, preview: bool) -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """The pack as a process, with the environment the engine gives a policy pack; stopped on the way out."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PULUMI_PROJECT": "etl-platform",
        "PULUMI_STACK": stack,
        "PULUMI_DRY_RUN": "true" if preview else "false",
        "PULUMI_CONFIG": "{}",
    }
    process = subprocess.Popen(
        [sys.executable, "-u", "__main__.py"],
        cwd=ROOT / "policy",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        if not port.isdigit():
            process.kill()
            _, errors = process.communicate(timeout=30)
            raise AssertionError(f"the pack printed {port!r} instead of its port: {errors}")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        process.kill()
        process.communicate(timeout=30)


def struct(properties: Mapping[str, Any]) -> struct_pb2.Struct:
    return json_format.ParseDict(dict(properties), struct_pb2.Struct())


def options(registration: Registration) -> analyzer_pb2.AnalyzerResourceOptions:
    recorded = registration.options
    timeouts = recorded.get("customTimeouts")
    return analyzer_pb2.AnalyzerResourceOptions(
        protect=registration.protect,
        ignoreChanges=recorded.get("ignoreChanges", []),
        deleteBeforeReplace=bool(recorded.get("deleteBeforeReplace", False)),
        deleteBeforeReplaceDefined="deleteBeforeReplace" in recorded,
        additionalSecretOutputs=recorded.get("additionalSecretOutputs", []),
        aliases=[alias["urn"] for alias in recorded.get("aliases", []) if "urn" in alias],
        customTimeouts=analyzer_pb2.AnalyzerResourceOptions.CustomTimeouts(**timeouts) if timeouts else None,
        parent=registration.parent,
    )


def provider(evaluation: Evaluation, registration: Registration) -> analyzer_pb2.AnalyzerProviderResource | None:
    """The provider resource behind the registration's provider reference (`<urn>::<id>`)."""
    urn = registration.provider.rsplit("::", 1)[0]
    found = [r for r in evaluation.registrations if r.urn == urn]
    if not found:
        return None
    return analyzer_pb2.AnalyzerProviderResource(
        type=found[0].type, properties=struct(found[0].wire_inputs), urn=found[0].urn, name=found[0].name
    )


def analyze_request(
    evaluation: Evaluation, registration: Registration, properties: Mapping[str, Any] | None = None
) -> analyzer_pb2.AnalyzeRequest:
    """What the engine sends for one resource before registering it (`properties` replaces the recorded ones)."""
    return analyzer_pb2.AnalyzeRequest(
        type=registration.type,
        properties=struct(registration.wire_inputs if properties is None else properties),
        urn=registration.urn,
        name=registration.name,
        options=options(registration),
        provider=provider(evaluation, registration),
    )


def stack_resource(
    evaluation: Evaluation, registration: Registration, *, protect: bool | None = None
) -> analyzer_pb2.AnalyzerResource:
    """One resource of the AnalyzeStack request, with its parent, dependencies and property dependencies."""
    resource_options = options(registration)
    if protect is not None:
        resource_options.protect = protect
    return analyzer_pb2.AnalyzerResource(
        type=registration.type,
        properties=struct(registration.wire_inputs),
        urn=registration.urn,
        name=registration.name,
        options=resource_options,
        provider=provider(evaluation, registration),
        parent=registration.parent,
        dependencies=sorted(set(registration.dependencies)),
        propertyDependencies={
            key: analyzer_pb2.AnalyzerPropertyDependencies(urns=urns)
            for key, urns in registration.property_dependencies.items()
        },
    )


def diagnostics(response: analyzer_pb2.AnalyzeResponse) -> list[tuple[str, str, str]]:
    """(policy, urn, message) of every diagnostic in a response."""
    return [(d.policyName, d.urn, d.message) for d in response.diagnostics]
