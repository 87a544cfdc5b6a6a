"""`components.roles.service_role` under mocks: the role trusts exactly one service principal, on behalf of this
account (and the given source ARNs), and carries the given policy inline (CONTROLS row 11)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pytest
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.roles import ServiceRole, service_role
from etlctl.mocks import ACCOUNT_ID, PlatformMocks, RecordingMonitor, Registration
from policy.controls import iam_trust_one_service
from tests.support.resources import policy, statements

PERMISSIONS = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": ["arn:aws:sqs:q"]}],
    }
)
SOURCE = "arn:aws:scheduler:eu-west-1:123456789012:schedule-group/default"


def _register(
    *, source_arns: Sequence[str] = (), description: str | None = None
) -> tuple[list[Registration], list[ServiceRole]]:
    """Run `service_role` under fresh mocks (update mode) inside a throwaway component; the recorded registrations."""
    mocks = PlatformMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="roles", stack="test", preview=False, monitor=monitor)
    made: list[ServiceRole] = []

    def program() -> None:
        parent = pulumi.ComponentResource("test:roles:Owner", "owner")
        made.append(
            service_role(
                "owner-role",
                policy_name="owner-policy",
                service="scheduler.amazonaws.com",
                account_id=pulumi.Output.from_input(ACCOUNT_ID),
                policy=pulumi.Output.from_input(PERMISSIONS),
                parent=parent,
                source_arns=[pulumi.Output.from_input(arn) for arn in source_arns],
                description=description,
            )
        )

    _sync_await(run_pulumi_func(program))
    return list(monitor.registrations), made


def _one(registrations: list[Registration], token: str) -> Registration:
    (found,) = [r for r in registrations if r.type == token]
    return found


@pytest.mark.parametrize("source_arns", [(), (SOURCE,)], ids=["account-only", "with-source-arn"])
def test_the_role_trusts_one_service_for_this_account(source_arns: Sequence[str]) -> None:
    registrations, _ = _register(source_arns=source_arns)
    role = _one(registrations, "aws:iam/role:Role")
    (statement,) = statements(policy(role.inputs["assumeRolePolicy"]))
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}
    expected: dict[str, dict[str, object]] = {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
    if source_arns:
        expected["ArnLike"] = {"aws:SourceArn": list(source_arns)}
    assert statement["Condition"] == expected
    # The CrossGuard check of row 11 agrees.
    assert iam_trust_one_service(role.type, role.inputs) == []


def test_the_policy_is_attached_inline_to_that_role_under_the_given_names() -> None:
    registrations, (made,) = _register(description="Starts the pipeline")
    role = _one(registrations, "aws:iam/role:Role")
    role_policy = _one(registrations, "aws:iam/rolePolicy:RolePolicy")
    assert [r.name for r in registrations if r.custom] == ["owner-role", "owner-policy"]
    assert role.parent.endswith("::owner") and role_policy.parent.endswith("::owner")
    assert role.inputs["description"] == "Starts the pipeline"
    assert role_policy.inputs["policy"] == PERMISSIONS
    role_id = _sync_await(made.role.id.future())
    assert role_policy.inputs["role"] == role_id
    assert role.urn in role_policy.dependencies


def test_no_description_means_no_description_input() -> None:
    registrations, _ = _register()
    assert "description" not in _one(registrations, "aws:iam/role:Role").inputs
