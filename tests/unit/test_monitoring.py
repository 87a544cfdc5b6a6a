"""Alert subscriptions: one per mailbox, named by address, carried over from their old position names by aliases.

The component is built from its args under mocks with a monitor that also keeps each registration's aliases, which
the engine uses to match a resource with the state of the previous update.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pytest
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.foundation.monitoring import Monitoring, MonitoringArgs
from etlctl.mocks import ACCOUNT_ID, PlatformMocks, RecordingMonitor
from tests.support.components import REGION

SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
NAME = "etl-platform-monitoring"
EMAILS = ["oncall@example.com", "data-team@example.com", "lead@example.com"]


class AliasRecorder(RecordingMonitor):
    """The recording monitor, plus the URNs each registration names as its aliases (name-only aliases resolved
    the engine's way: same type and parent, another name)."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.aliases: dict[str, list[str]] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        resolved = list(request.aliasURNs)
        for alias in request.aliases:
            spec = alias.spec
            # An empty parentUrn (and no noParent) keeps the current parent, as empty type/stack/project keep theirs.
            assert not (spec.type or spec.stack or spec.project or spec.parentUrn or spec.noParent), (
                "this test resolves name-only aliases; extend it for others"
            )
            resolved.append(response.urn.rsplit("::", 1)[0] + "::" + spec.name)
        self.aliases[response.urn] = resolved
        return response


def build(emails: Sequence[str]) -> AliasRecorder:
    mocks = PlatformMocks(region=REGION)
    monitor = AliasRecorder(mocks)
    pulumi.runtime.set_mocks(mocks, project="etl-platform", stack="test", monitor=monitor)
    args = MonitoringArgs(
        key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/test", account_id=ACCOUNT_ID, region=REGION, alert_emails=emails
    )
    _sync_await(run_pulumi_func(lambda: Monitoring(NAME, args)))
    return monitor


def subscriptions(monitor: AliasRecorder) -> dict[str, str]:
    """URN -> endpoint of every subscription."""
    return {r.urn: r.inputs["endpoint"] for r in monitor.registrations if r.type == SUBSCRIPTION}


def test_one_subscription_per_address_named_by_the_address() -> None:
    monitor = build(EMAILS)
    assert {urn.rsplit("::", 1)[1]: email for urn, email in subscriptions(monitor).items()} == {
        f"{NAME}-alerts-email-{email}": email for email in EMAILS
    }


def test_removing_an_address_leaves_every_other_subscription_as_it_is() -> None:
    before = subscriptions(build(EMAILS))
    after = subscriptions(build(EMAILS[1:]))
    assert after == {urn: email for urn, email in before.items() if email != EMAILS[0]}
    reordered = subscriptions(build(list(reversed(EMAILS))))
    assert reordered == before


def test_the_first_update_after_the_rename_replaces_none_of_them() -> None:
    """State before the rename held one subscription per list position (`<name>-alerts-email-<index>`). On the first
    update with the same list, each must be claimed by exactly one new subscription (its URN is among that one's
    aliases) with the same endpoint, protocol and topic, which the provider would otherwise replace: no create,
    no delete, no replacement."""
    monitor = build(EMAILS)
    registered = {r.urn: r for r in monitor.registrations if r.type == SUBSCRIPTION}
    parent_prefix = next(iter(registered)).rsplit("::", 1)[0]
    old_state = {f"{parent_prefix}::{NAME}-alerts-email-{index}": email for index, email in enumerate(EMAILS)}

    claims = {old: [urn for urn in registered if old in monitor.aliases[urn]] for old in old_state}
    assert all(len(claimants) == 1 for claimants in claims.values()), claims
    assert sorted(urn for (urn,) in claims.values()) == sorted(registered), "every new subscription adopts one"
    topic = {r.inputs["topic"] for r in registered.values()}
    assert len(topic) == 1, "one topic for all"
    for old, (urn,) in claims.items():
        assert registered[urn].inputs["endpoint"] == old_state[old]
        assert registered[urn].inputs["protocol"] == "email"


@pytest.mark.parametrize(
    "emails", [["oncall@example.com", "oncall@example.com"], ["oncall@example.com", "OnCall@Example.COM"]]
)
def test_the_same_mailbox_twice_is_refused(emails: list[str]) -> None:
    with pytest.raises(
        ValueError, match=f"alert_emails lists 'oncall@example.com' and '{emails[1]}', the same mailbox"
    ):
        build(emails)


def test_no_subscribers_means_no_subscription_and_no_dead_letter_queue() -> None:
    monitor = build([])
    assert subscriptions(monitor) == {}
    assert [r for r in monitor.registrations if r.type == "aws:sqs/queue:Queue"] == []
