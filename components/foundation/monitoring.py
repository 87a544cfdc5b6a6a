"""Monitoring: the stack's alerts topic, the API through which architectures add alarms and widgets, one dashboard.

Provisions a KMS-encrypted SNS topic with a TLS-only policy (SNS.1, SNS.4), one e-mail subscription per configured
address with a redrive policy to an encrypted DLQ (SNS.2), and an alarm on that DLQ. Architectures call `metric_alarm()`
to create alarms that notify the topic (CKV_AWS_319) and hand their `Widget`s to `Monitoring.publish_dashboard()`,
which the program calls once, after every architecture is built, to create the stack's single dashboard.

Takes: `MonitoringArgs` (key ARN, account id, e-mails, region). Exposes: `alerts` (`AlertRefs`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from components import policies
from components.refs import AlertRefs

Widget = dict[str, Any]
"""A CloudWatch dashboard widget (its JSON form); values may be Outputs, serialized by `Output.json_dumps`."""


def metric_alarm(
    name: str,
    *,
    parent: pulumi.Resource,
    alerts: AlertRefs,
    description: str,
    namespace: str,
    metric_name: str,
    dimensions: Mapping[str, pulumi.Input[str]],
    statistic: str = "Sum",
    threshold: float = 0,
    comparison: str = "GreaterThanThreshold",
    period_seconds: int = 300,
    evaluation_periods: int = 1,
    treat_missing_data: str = "notBreaching",
) -> aws.cloudwatch.MetricAlarm:
    """An alarm that notifies the alerts topic when it fires and when it recovers."""
    return aws.cloudwatch.MetricAlarm(
        name,
        alarm_description=description,
        namespace=namespace,
        metric_name=metric_name,
        dimensions=dict(dimensions),
        statistic=statistic,
        threshold=threshold,
        comparison_operator=comparison,
        period=period_seconds,
        evaluation_periods=evaluation_periods,
        treat_missing_data=treat_missing_data,
        alarm_actions=[alerts.topic_arn],
        ok_actions=[alerts.topic_arn],
        opts=pulumi.ResourceOptions(parent=parent),
    )


def metric_widget(
    title: str,
    metrics: Sequence[Sequence[Any]],
    *,
    region: str,
    stat: str = "Sum",
    period_seconds: int = 300,
    width: int = 12,
    height: int = 6,
) -> Widget:
    """A line graph of metrics in CloudWatch's array form: `[namespace, metric, dim, value, ...]`."""
    return {
        "type": "metric",
        "width": width,
        "height": height,
        "properties": {
            "title": title,
            "region": region,
            "stat": stat,
            "period": period_seconds,
            "view": "timeSeries",
            "metrics": [list(metric) for metric in metrics],
        },
    }


def text_widget(markdown: str, *, width: int = 24, height: int = 2) -> Widget:
    return {"type": "text", "width": width, "height": height, "properties": {"markdown": markdown}}


@dataclasses.dataclass(frozen=True)
class MonitoringArgs:
    key_arn: pulumi.Input[str]
    """Customer key for the topic and its DLQ."""
    account_id: pulumi.Input[str]
    region: str
    alert_emails: Sequence[str] = ()
    """E-mail subscribers; each must confirm the subscription AWS sends."""
    stateful: pulumi.ResourceOptions = dataclasses.field(default_factory=pulumi.ResourceOptions)
    """Protection options from the profile, for the DLQ that holds undelivered alerts."""


class Monitoring(pulumi.ComponentResource):
    alerts: AlertRefs
    topic: aws.sns.Topic

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
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

        # Undeliverable alerts land here instead of vanishing (SNS.2); its depth is itself alarmed.
        self.dead_letters = aws.sqs.Queue(
            f"{name}-alerts-dlq",
            kms_master_key_id=args.key_arn,
            message_retention_seconds=1_209_600,
            opts=pulumi.ResourceOptions.merge(args.stateful, pulumi.ResourceOptions(parent=self)),
        )
        aws.sqs.QueuePolicy(
            f"{name}-alerts-dlq-policy",
            queue_url=self.dead_letters.url,
            policy=pulumi.Output.all(self.dead_letters.arn, args.account_id, self.topic.arn).apply(
                lambda values: json.dumps(
                    policies.queue_policy(values[0], values[1], senders=[("sns.amazonaws.com", values[2])])
                )
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        redrive = self.dead_letters.arn.apply(lambda arn: json.dumps({"deadLetterTargetArn": arn}))
        for index, email in enumerate(args.alert_emails):
            aws.sns.TopicSubscription(
                f"{name}-alerts-email-{index}",
                topic=self.topic.arn,
                protocol="email",
                endpoint=email,
                redrive_policy=redrive,
                opts=pulumi.ResourceOptions(parent=self),
            )
        metric_alarm(
            f"{name}-alerts-dlq-depth",
            parent=self,
            alerts=self.alerts,
            description="Alerts could not be delivered to a subscriber and wait in the alerts DLQ.",
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": self.dead_letters.name},
            statistic="Maximum",
        )
        self.register_outputs({"alertsTopicArn": self.topic.arn})

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
