"""The rendered workflows, executed on moto's Step Functions engine (a real moto server process).

What moto executes here: Parallel, Map (inline), Choice, Pass, Succeed, Fail, Retry (with backoff and jitter), Catch,
intrinsic functions (States.JsonToString, States.Array), `lambda:invoke` (moto's "lambda simple" backend, whose return
values the test queues) and `sns:publish` (delivered to an SQS subscriber by moto's SNS).

What moto cannot run: a Lambda *function error* cannot be queued in the "lambda simple" backend, except through its
payload size limit: a result over 6 MB makes the invoke return `FunctionError` (`Function.ResponseSizeTooLarge`), which
is what the failure tests use. `emr-serverless:startJobRun.sync` is unsupported by moto's SFN
engine; `ecs:runTask.sync` and `glue:startJobRun.sync` have moto handlers, but no container or job actually runs (moto
only advances a fake task/job status), so nothing would write the validation result the ECS gate reads. Those
definitions are checked by statelint in tests/unit/test_asl.py; the skipped test below records it.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from components.asl import Retry
from components.workflows import LambdaInvoker, PipelineStages, orchestrated_pipeline, sequential_pipeline
from tests.integration.conftest import Emulator, entered

RUN = {"run_date": "2024-01-02", "source": "orders"}
# Over moto's 6,000,000-byte response limit: the invoke fails with FunctionError, like a crashing function.
FAILING_RESULT = json.dumps("x" * 6_000_100)
# Short intervals keep the retry test fast; the shape (backoff 2.0, jitter) is the production one.
FAST_RETRY = (Retry(("States.TaskFailed",), interval_seconds=1, max_attempts=1, max_delay_seconds=1),)


def _deploy(emulator: Emulator, build: Any) -> tuple[str, str]:
    """Create the function, the alerts topic with an SQS subscriber, and the state machine; returns (machine ARN,
    queue URL)."""
    iam, lam, sns, sqs = (emulator.client(name) for name in ("iam", "lambda", "sns", "sqs"))
    role = iam.create_role(RoleName="pipeline", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    function_arn = lam.create_function(
        FunctionName="stage", Runtime="python3.12", Role=role, Handler="stage.handler", Code={"ZipFile": b"stub"}
    )["FunctionArn"]
    topic_arn = sns.create_topic(Name="alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    machine = build(LambdaInvoker(function_arn), topic_arn)
    machine_arn = emulator.client("stepfunctions").create_state_machine(
        name="pipeline", definition=machine.to_json(), roleArn=role
    )["stateMachineArn"]
    return machine_arn, queue_url


def _alerts(emulator: Emulator, queue_url: str) -> list[dict[str, Any]]:
    """The SNS notifications in the subscriber queue, as (subject, parsed message) dicts."""
    messages = emulator.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    envelopes = [json.loads(message["Body"]) for message in messages]
    return [{"Subject": envelope.get("Subject"), "Message": json.loads(envelope["Message"])} for envelope in envelopes]


def test_orchestrated_pipeline_success_runs_every_stage_and_keeps_results(emulator: Emulator) -> None:
    machine_arn, queue_url = _deploy(
        emulator, lambda invoker, topic: orchestrated_pipeline(["orders", "customers"], PipelineStages(
            invoker, invoker, invoker, invoker), topic, max_quarantine_rate=0.05)
    )  # fmt: skip
    # Branches and Map iterations run concurrently and share one result queue, so the two extract (and the two
    # transform) results are interchangeable.
    emulator.queue_lambda_results(
        json.dumps({"rows": 3}),
        json.dumps({"rows": 3}),
        json.dumps({"curated": 3}),
        json.dumps({"curated": 3}),
        json.dumps({"passed": True, "quarantine_rate": 0.01}),
        json.dumps({"loaded": 6}),
    )

    description, events = emulator.execute(machine_arn, {"run_date": "2024-01-02"}, timeout_s=30)

    assert description["status"] == "SUCCEEDED"
    states = entered(events)
    expected = [
        "ExtractSources",
        "TransformPartitions",
        "Validate",
        "QualityGate",
        "Load",
        "NotifySuccess",
        "Succeeded",
    ]
    assert [name for name in states if name in expected] == expected
    assert Counter(states)["Transform partition"] == 2
    assert {"Extract orders", "Extract customers", "Source orders", "Source customers"} <= set(states)
    assert "NotifyFailure" not in states
    output = json.loads(description["output"])
    assert sorted(item["source"] for item in output["extract"]) == ["customers", "orders"]
    assert [item["transform"]["Payload"] for item in output["transform"]] == [{"curated": 3}, {"curated": 3}]
    assert output["validate"] == {"Payload": {"passed": True, "quarantine_rate": 0.01}}
    assert output["load"] == {"Payload": {"loaded": 6}}
    [alert] = _alerts(emulator, queue_url)
    assert alert["Subject"] == "ETL pipeline succeeded"
    assert alert["Message"]["load"] == {"Payload": {"loaded": 6}}


def test_transient_failure_is_retried_and_the_run_succeeds(emulator: Emulator) -> None:
    machine_arn, _ = _deploy(
        emulator,
        lambda invoker, topic: sequential_pipeline(
            PipelineStages(invoker, invoker, invoker, invoker), topic, stage_retry=FAST_RETRY
        ),
    )
    emulator.queue_lambda_results(
        FAILING_RESULT,
        json.dumps({"rows": 3}),
        json.dumps({"curated": 3}),
        json.dumps({"passed": True, "quarantine_rate": 0.0}),
        json.dumps({"loaded": 3}),
    )

    description, events = emulator.execute(machine_arn, RUN, timeout_s=30)

    assert description["status"] == "SUCCEEDED"
    assert entered(events) == ["Extract", "Transform", "Validate", "QualityGate", "Load", "NotifySuccess", "Succeeded"]
    types = [event["type"] for event in events]
    first_task_events = types[types.index("TaskStateEntered") : types.index("TaskStateExited")]
    # One state entry, two attempts: the failure is retried inside the state, not caught.
    assert first_task_events == [
        "TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskFailed", "TaskScheduled", "TaskStarted",
        "TaskSucceeded",
    ]  # fmt: skip
    assert json.loads(description["output"])["extract"] == {"Payload": {"rows": 3}}


def test_quality_gate_above_threshold_alerts_and_fails(emulator: Emulator) -> None:
    machine_arn, queue_url = _deploy(
        emulator,
        lambda invoker, topic: sequential_pipeline(
            PipelineStages(invoker, invoker, invoker, invoker), topic, max_quarantine_rate=0.05
        ),
    )
    emulator.queue_lambda_results(
        json.dumps({"rows": 100}),
        json.dumps({"curated": 80}),
        json.dumps({"passed": True, "quarantine_rate": 0.2}),
    )

    description, events = emulator.execute(machine_arn, RUN, timeout_s=30)

    assert description["status"] == "FAILED"
    assert description.get("error") == "PipelineFailed"
    assert entered(events) == ["Extract", "Transform", "Validate", "QualityGate", "QualityGateFailed",
                                "NotifyFailure", "Failed"]  # fmt: skip
    [alert] = _alerts(emulator, queue_url)
    assert alert["Subject"] == "ETL pipeline failed"
    assert alert["Message"]["error"]["Error"] == "QualityGateFailed"
    assert json.loads(alert["Message"]["error"]["Cause"]) == {"Payload": {"passed": True, "quarantine_rate": 0.2}}
    assert alert["Message"]["run_date"] == "2024-01-02"


def test_caught_error_publishes_the_error_to_the_alert_subscriber(emulator: Emulator) -> None:
    machine_arn, queue_url = _deploy(
        emulator,
        lambda invoker, topic: sequential_pipeline(
            PipelineStages(invoker, invoker, invoker, invoker), topic, stage_retry=FAST_RETRY
        ),
    )
    # Transform fails on the first attempt and on its one retry: the Catch takes over.
    emulator.queue_lambda_results(json.dumps({"rows": 3}), FAILING_RESULT, FAILING_RESULT)

    description, events = emulator.execute(machine_arn, RUN, timeout_s=30)

    assert description["status"] == "FAILED"
    assert description.get("error") == "PipelineFailed"
    assert entered(events) == ["Extract", "Transform", "NotifyFailure", "Failed"]
    [alert] = _alerts(emulator, queue_url)
    assert alert["Subject"] == "ETL pipeline failed"
    assert alert["Message"]["error"]["Error"] == "Function.ResponseSizeTooLarge"
    assert alert["Message"]["extract"] == {"Payload": {"rows": 3}}
    assert alert["Message"]["source"] == "orders"


@pytest.mark.skip(
    reason="not executed on moto: emr-serverless is unsupported by moto's SFN engine, and ecs:runTask.sync / "
    "glue:startJobRun.sync would only run moto's fake task lifecycle (no container or job runs, no validation result "
    "written); those definitions are statelint-checked in tests/unit/test_asl.py"
)
def test_job_engine_stages_execute() -> None:
    raise AssertionError("documented limitation")
