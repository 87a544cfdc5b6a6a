"""The one way the platform makes an IAM role for an AWS service.

`service_role()` provisions two resources: an `aws.iam.Role` whose trust policy admits exactly one service principal,
only on behalf of this account (`aws:SourceAccount`) and, when given, only from these source ARNs (`aws:SourceArn`),
as CONTROLS row 11 (nag IAM4) requires; and the role's inline `aws.iam.RolePolicy` holding the permissions the caller
built. Every service role of the stack (Lambda, Step Functions, EventBridge Scheduler, ECS tasks, VPC flow logs) goes
through here, so the trust shape is written once (`components.policies.assume_role`) and cannot drift per call site.
The caller names both resources: the names are the resources' identity in existing stacks.

`instance_role()` is the one exception to the trust shape: the role of an EC2 instance profile (EMR cluster
instances), which EC2 assumes without the source conditions (`components.policies.instance_role_trust`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components import policies


@dataclasses.dataclass(frozen=True)
class ServiceRole:
    """The role and its inline policy; depend on `policy` when the service checks the role's permissions at
    creation (Step Functions logging, for one)."""

    role: aws.iam.Role
    policy: aws.iam.RolePolicy


def service_role(
    role_name: str,
    *,
    policy_name: str,
    service: str,
    account_id: pulumi.Input[str],
    policy: pulumi.Input[str],
    parent: pulumi.Resource,
    source_arns: Sequence[pulumi.Input[str]] = (),
    description: str | None = None,
) -> ServiceRole:
    """A role `service` may assume for this account (and `source_arns`, when given) with `policy` (JSON text)
    attached inline. `role_name` and `policy_name` are the Pulumi resource names."""
    opts = pulumi.ResourceOptions(parent=parent)
    trust = pulumi.Output.all(account_id, *source_arns).apply(
        lambda values: json.dumps(policies.assume_role(service, values[0], source_arns=values[1:]))
    )
    role = aws.iam.Role(role_name, description=description, assume_role_policy=trust, opts=opts)
    role_policy = aws.iam.RolePolicy(policy_name, role=role.id, policy=policy, opts=opts)
    return ServiceRole(role=role, policy=role_policy)


def instance_role(
    role_name: str,
    *,
    policy_name: str,
    policy: pulumi.Input[str],
    parent: pulumi.Resource,
    description: str | None = None,
) -> ServiceRole:
    """The role of an EC2 instance profile with `policy` (JSON text) attached inline; its trust admits only the EC2
    service (see `components.policies.instance_role_trust` for why without source conditions)."""
    opts = pulumi.ResourceOptions(parent=parent)
    trust = json.dumps(policies.instance_role_trust())
    role = aws.iam.Role(role_name, description=description, assume_role_policy=trust, opts=opts)
    role_policy = aws.iam.RolePolicy(policy_name, role=role.id, policy=policy, opts=opts)
    return ServiceRole(role=role, policy=role_policy)
