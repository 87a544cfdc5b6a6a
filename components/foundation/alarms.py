"""The API through which every component adds alarms and dashboard widgets.

`metric_alarm()` creates a CloudWatch alarm that notifies the stack's alerts topic when it fires and when it recovers
(CKV_AWS_319); `metric_widget()` and `text_widget()` describe dashboard widgets, which architectures collect in their
`widgets` and the Monitoring component publishes as the stack's one dashboard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from components.pipelines import METRICS_NAMESPACE
from components.refs import AlertRefs

__all__ = [
    "LANDED_FILE_MAX_WAIT_SECONDS",
    "METRICS_NAMESPACE",
    "Widget",
    "metric_alarm",
    "metric_widget",
    "text_widget",
]

# A file waits in landing only when no run claims it (an unknown source folder, a claim that keeps failing): past this,
# the landing-age alarms fire. Runs report the age; between runs nothing is measured.
LANDED_FILE_MAX_WAIT_SECONDS = 6 * 3600

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
