"""Dead-letter queues the way every part of the platform needs them: one function instead of five near-copies.

A DLQ holds what a schedule, a rule, a subscription or a consumer could not deliver: encrypted with the stack key
(SQS.1), kept 14 days (SQS's maximum: time to investigate and redrive), TLS-only with sends allowed only from the
given (service, source ARN) pairs (SQS.3), an alarm to the alerts topic as soon as anything waits in it (row 54),
and protected in prod (its messages are the only record of what failed).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components import policies
from components.foundation.alarms import metric_alarm
from components.refs import AlertRefs

DLQ_RETENTION_SECONDS = 1_209_600  # 14 days, SQS's maximum: time to investigate and redrive


def dead_letter_queue(
    name: str,
    *,
    parent: pulumi.Resource,
    key_arn: pulumi.Input[str],
    account_id: pulumi.Input[str],
    alerts: AlertRefs,
    stateful: pulumi.ResourceOptions,
    holds: str,
    senders: Sequence[tuple[str, pulumi.Input[str]]] = (),
) -> aws.sqs.Queue:
    """`name`, `name-policy` and `name-depth` (the alarm); `holds` completes "Messages wait in ...: <holds>"."""
    queue = aws.sqs.Queue(
        name,
        kms_master_key_id=key_arn,
        message_retention_seconds=DLQ_RETENTION_SECONDS,
        opts=pulumi.ResourceOptions.merge(stateful, pulumi.ResourceOptions(parent=parent)),
    )
    services = [service for service, _ in senders]
    aws.sqs.QueuePolicy(
        f"{name}-policy",
        queue_url=queue.url,
        policy=pulumi.Output.all(queue.arn, account_id, *(arn for _, arn in senders)).apply(
            lambda values: json.dumps(
                policies.queue_policy(values[0], values[1], senders=list(zip(services, values[2:], strict=True)))
            )
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    metric_alarm(
        f"{name}-depth",
        parent=parent,
        alerts=alerts,
        description=f"Messages wait in {name}: {holds}",
        namespace="AWS/SQS",
        metric_name="ApproximateNumberOfMessagesVisible",
        dimensions={"QueueName": queue.name},
        statistic="Maximum",
    )
    return queue
