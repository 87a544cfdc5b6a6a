"""The pipeline definition executed on moto's Step Functions engine (a real moto server process), built from bound
Lambda runners with short budgets: the input checks, the Sources Map over several sources, the gate, and one short
alert per failed run.

What moto executes here: Map (inline), Choice (IsPresent, IsString, IsTimestamp, StringEquals, And/Or/Not), Pass with
intrinsics (States.Format, States.StringSplit, States.ArrayGetItem), Fail, Retry, Catch, `lambda:invoke` (moto's
"lambda simple" backend, whose return values the test queues) and `sns:publish` (delivered to an SQS subscriber).
A Lambda *function error* can only be provoked through the response size limit (a result over 6 MB fails the invoke
with `Function.ResponseSizeTooLarge`). `ecs:runTask.sync` runs only moto's fake task lifecycle (no container runs, so
no result object is written) and `emr-serverless` is unsupported: pipelines with those runners are statelint-checked
in tests/unit/test_pipelines.py instead.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.asl import TASK_FAILED, Retry
from components.functions import LambdaStages
from components.pipelines import PipelineSpec, ResultStore, pipeline_definition
from components.stages import Stage, StageBudget
from tests.support.emulator import Emulator, entered, scheduled_payloads

SOURCES = ("orders", "refunds")
RUN_DATE = "2024-01-02"
# Over moto's 6,000,000-byte response limit: the invoke fails with FunctionError, like a crashing function.
FAILING_RESULT = json.dumps("x" * 6_000_100)
# Short intervals keep the tests fast; the shape (backoff 2.0, jitter) is the production one.
FAST = StageBudget(timeout_seconds=60, retry=(Retry((TASK_FAILED,), interval_seconds=1, max_attempts=1),))
INPUT_CHECKS = ["CheckSources", "CheckRunDate", "RunDateFromInput", "CheckDate", "IsDate"]


def _deploy(emulator: Emulator) -> tuple[str, str]:
    role = emulator.role("pipeline")
    arns = {stage: f"arn:aws:lambda:us-east-1:123456789012:function:etl-{stage.value}" for stage in Stage}
    emulator.functions(list(arns.values()), role)
    topic_arn, queue_url = emulator.alerts_topic("alerts")
    spec = PipelineSpec(name="etl-test", sources=SOURCES, max_quarantine_rate=0.1, max_concurrency=1)
    runner = LambdaStages("serverless", arns, dict.fromkeys(Stage, FAST))
    machine = pipeline_definition(
        spec, dict.fromkeys(Stage, runner), alerts_topic_arn=topic_arn, results=ResultStore(bucket="unused")
    )
    machine_arn = emulator.client("stepfunctions").create_state_machine(
        name="pipeline", definition=machine.to_json(), roleArn=role
    )["stateMachineArn"]
    return machine_arn, queue_url


def _validate(passed: bool, rate: float) -> str:
    return json.dumps({"stage": "validate", "passed": passed, "quarantine_rate": rate, "rows_in": 200,
                       "rows_quarantined": round(200 * rate)})  # fmt: skip


def _results(validate: str) -> list[str]:
    """What the stage functions return, in invocation order (the Map runs one source at a time)."""
    per_source = [json.dumps({"stage": s, "source": source}) for source in SOURCES for s in ("extract", "transform")]
    return [*per_source, validate, json.dumps({"stage": "load", "rows_curated": 190})]


def test_a_run_extracts_and_transforms_each_source_then_validates_and_loads(emulator: Emulator) -> None:
    machine, inbox = _deploy(emulator)
    emulator.queue_lambda_results(*_results(_validate(True, 0.05)))

    description, events = emulator.execute(machine, {"run_date": f"{RUN_DATE}T02:00:00Z"})

    assert description["status"] == "SUCCEEDED", description
    assert entered(events) == [
        "CheckSources", "DefaultSources", *INPUT_CHECKS[1:], "Corrections", "Sources",
        "CheckSource", "Extract", "Transform", "CheckSource", "Extract", "Transform",
        "ReportLanding", "Validate", "QualityGate", "Load", "Succeeded",
    ]  # fmt: skip
    assert scheduled_payloads(events) == [
        {"stage": "extract", "run_date": RUN_DATE, "source": "orders"},
        {"stage": "transform", "run_date": RUN_DATE, "source": "orders"},
        {"stage": "extract", "run_date": RUN_DATE, "source": "refunds"},
        {"stage": "transform", "run_date": RUN_DATE, "source": "refunds"},
        {"stage": "validate", "run_date": RUN_DATE, "max_quarantine_rate": 0.1},
        {"stage": "load", "run_date": RUN_DATE},
    ]
    output = json.loads(description["output"])
    assert output["load"] == {"Payload": {"stage": "load", "rows_curated": 190}}
    assert emulator.alerts(inbox) == [], "a successful run alerts nobody"


def test_a_manual_run_may_name_its_sources(emulator: Emulator) -> None:
    machine, _ = _deploy(emulator)
    emulator.queue_lambda_results(*_results(_validate(True, 0.0))[2:])

    description, events = emulator.execute(machine, {"run_date": RUN_DATE, "sources": ["refunds"]})

    assert description["status"] == "SUCCEEDED", description
    assert [p.get("source") for p in scheduled_payloads(events)] == ["refunds", "refunds", None, None]


@pytest.mark.parametrize(
    ("run", "states", "cause"),
    [
        ({"run_date": 20240102}, ["CheckSources", "DefaultSources", "CheckRunDate", "InvalidRunDate"], "run_date must be a date"),
        ({"run_date": "2024-13-45"}, ["CheckSources", "DefaultSources", *INPUT_CHECKS[1:], "InvalidRunDate"], "run_date must be a date"),
        ({"run_date": "yesterday"}, ["CheckSources", "DefaultSources", *INPUT_CHECKS[1:], "InvalidRunDate"], "run_date must be a date"),
        ({"run_date": RUN_DATE, "sources": "orders"}, ["CheckSources", "InvalidSources"], "sources must be a non-empty list of configured sources (orders, refunds)"),
        ({"run_date": RUN_DATE, "sources": []}, ["CheckSources", "InvalidSources"], "sources must be a non-empty list"),
        ({"run_date": RUN_DATE, "sources": ["orders", "nope"]}, [*INPUT_CHECKS, "Corrections", "Sources", "CheckSource", "Extract", "Transform", "CheckSource", "UnknownSource", "SourcesFailed"], "sources may only name configured sources (orders, refunds)"),
        ({"run_date": RUN_DATE, "retract": {"file": 7}}, [*INPUT_CHECKS[:1], "DefaultSources", *INPUT_CHECKS[1:], "Corrections", "CheckRetract", "InvalidRetract"], "retract.file must be the key of a delivered file"),
        ({"run_date": RUN_DATE, "reprocess": {"from": "2024-01-01", "to": "soon"}}, [*INPUT_CHECKS[:1], "DefaultSources", *INPUT_CHECKS[1:], "Corrections", "CheckReprocess", "ReprocessDates", "AreReprocessDates", "InvalidReprocess"], "reprocess.from and reprocess.to must be dates"),
    ],
)  # fmt: skip
def test_bad_input_reaches_the_alert_path_with_its_reason(
    emulator: Emulator, run: dict[str, Any], states: list[str], cause: str
) -> None:
    machine, inbox = _deploy(emulator)
    emulator.queue_lambda_results(*_results(_validate(True, 0.0)))

    description, events = emulator.execute(machine, run)

    assert description["status"] == "FAILED" and description["error"] == "PipelineFailed", description
    assert entered(events) == [*states, "InvalidInput", "NotifyFailure", "Failed"]
    [(subject, message)] = emulator.alerts(inbox)
    assert subject == "etl-test: run refused"
    assert message.startswith("etl-test refused the input of execution ") and cause in message


def test_a_failed_gate_sends_one_alert_with_the_counts_and_loads_nothing(emulator: Emulator) -> None:
    machine, inbox = _deploy(emulator)
    emulator.queue_lambda_results(*_results(_validate(False, 0.3))[:-1])

    description, events = emulator.execute(machine, {"run_date": RUN_DATE})

    assert description["status"] == "FAILED", description
    assert entered(events)[-4:] == ["QualityGate", "QualityGateFailed", "NotifyFailure", "Failed"]
    assert [p["stage"] for p in scheduled_payloads(events)][-1] == "validate", "load must not be invoked"
    [(subject, message)] = emulator.alerts(inbox)
    assert subject == "etl-test: quality gate failed"
    assert message.startswith(
        f"etl-test: run {RUN_DATE} stopped at the quality gate (quarantine rate 0.3 above 0.1, 60 of 200 rows "
        "quarantined); nothing was published."
    )


def test_a_stage_failing_every_attempt_sends_one_short_alert(emulator: Emulator) -> None:
    machine, inbox = _deploy(emulator)
    *before_load, _ = _results(_validate(True, 0.0))
    emulator.queue_lambda_results(*before_load, FAILING_RESULT, FAILING_RESULT)

    description, events = emulator.execute(machine, {"run_date": RUN_DATE})

    assert description["status"] == "FAILED", description
    assert entered(events)[-5:] == ["Load", "FailedLoad", "Alert", "NotifyFailure", "Failed"]
    [(subject, message)] = emulator.alerts(inbox)
    assert subject == "etl-test: run failed"
    assert message.startswith(f"etl-test: run {RUN_DATE} failed at load with Function.ResponseSizeTooLarge.")
    assert ":execution:pipeline:" in message, "where to look"
    # A short summary, not the execution state (which would carry every stage's result).
    assert "rows_curated" not in message and "quarantine_rate" not in message and len(message) < 600


def test_a_manual_retraction_runs_on_the_load_function_then_the_run_goes_on(emulator: Emulator) -> None:
    machine, inbox = _deploy(emulator)
    emulator.queue_lambda_results(json.dumps({"stage": "load", "retract": {"partitions": ["2024-01-01"]}}))
    emulator.queue_lambda_results(*_results(_validate(True, 0.0)))

    description, events = emulator.execute(machine, {"run_date": RUN_DATE, "retract": {"file": "orders/seq=3"}})

    assert description["status"] == "SUCCEEDED", description
    assert entered(events)[:9] == [
        *INPUT_CHECKS[:1], "DefaultSources", *INPUT_CHECKS[1:], "Corrections", "CheckRetract", "Retract",
    ]  # fmt: skip
    assert entered(events)[9:11] == ["AfterRetract", "Sources"]
    first = scheduled_payloads(events)[0]
    assert first == {"stage": "load", "run_date": RUN_DATE, "retract": {"file": "orders/seq=3"}}
    assert json.loads(description["output"])["retract"]["Payload"]["retract"] == {"partitions": ["2024-01-01"]}
    assert emulator.alerts(inbox) == []
