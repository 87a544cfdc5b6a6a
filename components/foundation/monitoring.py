"""Monitoring: the stack's alerts topic and its one dashboard.

Provisions a KMS-encrypted SNS topic with a TLS-only policy (SNS.1, SNS.4) and one e-mail subscription per configured
address, each with a redrive policy to an encrypted, alarmed DLQ (SNS.2; the DLQ exists only when there are
subscribers). A subscription is named by its address, so removing or reordering addresses leaves the others alone
(each would otherwise be replaced and its owner asked to confirm again); the same mailbox twice is refused.
Architectures create alarms that notify the topic with `components.foundation.alarms.metric_alarm()` (CKV_AWS_319)
and collect their widgets, which the program hands to `Monitoring.publish_dashboard()` once, after every
architecture is built, to create the stack's single dashboard.

Takes: `MonitoringArgs` (key ARN, account id, e-mails, region). Exposes: `alerts` (`AlertRefs`), `outputs()` (the
topic's ARN, the alerts DLQ's URL and ARN).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components import policies
from components.foundation.alarms import Widget, text_widget
from components.queues import dead_letter_queue
from components.refs import AlertRefs


@dataclasses.dataclass(frozen=True)
class MonitoringArgs:
    key_arn: pulumi.Input[str]
    """Customer key for the topic and its DLQ."""
    account_id: pulumi.Input[str]
    region: str
    alert_emails: Sequence[str] = ()
    """E-mail subscribers, each mailbox once; each must confirm the subscription AWS sends."""
    stateful: pulumi.ResourceOptions = dataclasses.field(default_factory=pulumi.ResourceOptions)
    """Protection options from the profile, for the DLQ that holds undelivered alerts."""


class Monitoring(pulumi.ComponentResource):
    alerts: AlertRefs
    topic: aws.sns.Topic

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        seen: dict[str, str] = {}
        for email in args.alert_emails:
            if email.lower() in seen:
                raise ValueError(
                    f"Monitoring: alert_emails lists {seen[email.lower()]!r} and {email!r}, the same mailbox; "
                    "give each address once"
                )
            seen[email.lower()] = email
        super().__init__("etl:foundation:Monitoring", name, {}, opts)
        self._name = name
        self._region = args.region
        self._dashboard: aws.cloudwatch.Dashboard | None = None

        self.topic = aws.sns.Topic(
            f"{name}-alerts",
            kms_master_key_id=args.key_arn,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.alerts = AlertRefs(topic_arn=self.topic.arn)
        aws.sns.TopicPolicy(
            f"{name}-alerts-policy",
            arn=self.topic.arn,
            policy=pulumi.Output.all(self.topic.arn, args.account_id).apply(
                lambda values: json.dumps(policies.topic_policy(values[0], values[1]))
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.dead_letters: aws.sqs.Queue | None = None
        if args.alert_emails:
            self._subscribe(name, args)
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, pulumi.Output[str]]:
        """The topic's ARN, and the alerts DLQ's URL and ARN when there is one (a redrive names both)."""
        outputs = {"alertsTopicArn": self.topic.arn}
        if self.dead_letters is not None:
            outputs["alertsDeadLetterQueueUrl"] = self.dead_letters.url
            outputs["alertsDeadLetterQueueArn"] = self.dead_letters.arn
        return outputs

    def _subscribe(self, name: str, args: MonitoringArgs) -> None:
        # Undeliverable alerts land here instead of vanishing (SNS.2); its depth is itself alarmed. Without
        # subscribers there is nothing to redrive, so a stack without alert e-mails has no alerts DLQ.
        self.dead_letters = dead_letter_queue(
            f"{name}-alerts-dlq",
            parent=self,
            key_arn=args.key_arn,
            account_id=args.account_id,
            alerts=self.alerts,
            stateful=args.stateful,
            holds="alerts SNS could not deliver to a subscriber.",
            senders=[("sns.amazonaws.com", self.topic.arn)],
        )
        redrive = self.dead_letters.arn.apply(lambda arn: json.dumps({"deadLetterTargetArn": arn}))
        for index, email in enumerate(args.alert_emails):
            aws.sns.TopicSubscription(
                f"{name}-alerts-email-{email}",
                topic=self.topic.arn,
                protocol="email",
                endpoint=email,
                redrive_policy=redrive,
                # Subscriptions used to be named by list position. The alias adopts the one at the same position on
                # the first update after the rename, so nobody re-confirms (provided the list did not change in that
                # same update). Unmatched aliases are ignored.
                opts=pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(name=f"{name}-alerts-email-{index}")]),
            )

    def publish_dashboard(self, title: str, widgets: Sequence[Widget]) -> aws.cloudwatch.Dashboard:
        """Create the stack's one dashboard from every architecture's widgets; call once, after all are built."""
        if self._dashboard is not None:
            raise RuntimeError("the stack dashboard is published once, after every architecture is built")
        header = text_widget(f"# {title}\nAlarms notify the alerts topic; this dashboard is generated by Pulumi.")
        body = pulumi.Output.json_dumps({"widgets": _layout([header, *widgets])})
        self._dashboard = aws.cloudwatch.Dashboard(
            f"{self._name}-dashboard",
            dashboard_name=title,
            dashboard_body=body,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return self._dashboard


def _layout(widgets: Sequence[Widget]) -> list[Widget]:
    """Place widgets left to right, wrapping at CloudWatch's 24-column grid."""
    placed: list[Widget] = []
    x = y = row_height = 0
    for widget in widgets:
        width, height = int(widget.get("width", 12)), int(widget.get("height", 6))
        if x + width > 24:
            x, y, row_height = 0, y + row_height, 0
        placed.append({**widget, "x": x, "y": y})
        x += width
        row_height = max(row_height, height)
    return placed
