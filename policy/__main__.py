"""The CrossGuard policy pack `etl-platform-controls`: every check of policy/controls.py as a mandatory policy.

Run by `pulumi preview --policy-pack policy` (the pull-request workflow). The engine runs this file with
`__name__ == "__main__"`, which constructs the `PolicyPack` and so starts the analyzer server; importing the module
(as the tests do) only builds `POLICIES`.

Props reach the checks as plain data: the engine's unknown-value sentinels become None, so a value that is unknown
during preview is skipped by the checks instead of aborting the whole policy. A resource's environment is its
provider's `Environment` default tag; a stack's, that of the aws provider among its resources (or, if the engine hands
over no provider resource, of the resources' providers). The unwrapping reads pulumi-policy's private proxy classes;
tests/policy/test_analyzer.py runs this file as the engine does (a process that prints its port, then
GetAnalyzerInfo, Configure, Analyze, AnalyzeStack over gRPC), so an upgrade that changes them fails there.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# The pack runs from its own directory; the checks import the repository's policy documents helpers.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pulumi_policy import (  # noqa: E402
    EnforcementLevel,
    Policy,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import _DictProxy, _is_unknown, _ListProxy  # noqa: E402
from pulumi_policy.secret import Secret, _DictSecretsProxy, _ListSecretsProxy  # noqa: E402

from policy.controls import (  # noqa: E402
    AWS_PROVIDER,
    RESOURCE_CHECKS,
    STACK_CHECKS,
    Context,
    Control,
    StackControl,
    StackResource,
    environment_of,
    stack_environment,
)

PACK_NAME = "etl-platform-controls"


def plain(value: Any) -> Any:
    """Unwrap the engine's unknown-checking (and secret) proxies into dicts and lists; unknowns become None."""
    value = _target(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, Secret):
        return plain(value.value)
    return None if _is_unknown(value) else value


def _target(value: Any) -> Any:
    """The container behind a proxy: reading `["__target"]` bypasses the unknown check of every other key."""
    while isinstance(value, _DictProxy | _ListProxy | _DictSecretsProxy | _ListSecretsProxy):
        value = value["__target"]
    return value


def resource_policy(control: Control) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in control.resource_types:
            return
        provider = plain(args.provider.props) if args.provider is not None else None
        context = Context(environment=environment_of(provider), name=args.name)
        for message in control.check(args.resource_type, plain(args.props), context):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=control.name,
        description=control.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def stack_policy(control: StackControl) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [
            StackResource(
                urn=r.urn,
                type=r.resource_type,
                name=r.name,
                props=plain(r.props),
                protect=bool(r.opts.protect),
                dependencies=tuple(d.urn for d in r.dependencies),
                property_dependencies={k: [d.urn for d in v] for k, v in r.property_dependencies.items()},
            )
            for r in args.resources
        ]
        if not any(r.type == AWS_PROVIDER for r in resources):
            providers = {r.provider.urn: r.provider for r in args.resources if r.provider is not None}
            resources += [
                StackResource(urn=p.urn, type=p.resource_type, name=p.name, props=plain(p.props))
                for p in providers.values()
            ]
        for urn, message in control.check(resources, stack_environment(resources)):
            report_violation(message, urn)

    return StackValidationPolicy(
        name=control.name,
        description=control.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


POLICIES: list[Policy] = [resource_policy(c) for c in RESOURCE_CHECKS] + [stack_policy(c) for c in STACK_CHECKS]


if __name__ == "__main__":
    PolicyPack(name=PACK_NAME, policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
