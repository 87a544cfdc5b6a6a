"""The state machine definition THE PROGRAM renders, executed on moto's Step Functions engine (a moto server process).

Unlike test_pipeline_execution.py, which builds definitions in the test, this evaluates `__main__.py` under the
Pulumi mocks, takes the `definition` input of the StepFunctions component's state machine as JSON text, and creates it
unchanged in moto. Two stacks:
- `own-lambdas`: `architectures: [stepfunctions]`, every stage on the orchestrator's own Lambdas;
- `serverless-runners`: `[serverless, stepfunctions]` with every stage on the serverless functions (the dev stack).

No ARN is rewritten: the mocks name resources `<name>-<7 hex>` in account 123456789012, which is moto's default
account, and the stacks are evaluated in us-east-1, the server's region, so moto's `create_function` / `create_topic`
with the names in the definition return exactly the definition's ARNs (the fixture asserts it).

What runs, on the rendered definition: the input checks (the scheduler's timestamp cut to its date), the Sources Map,
`lambda:invoke` Tasks with the production Retry (the `States.TaskFailed` retrier, interval 5 s, backoff 2.0, full
jitter: moto really sleeps, so one retry costs 0-5 s), the Catch into the alert path, the QualityGate Choice, the
summaries built with `States.Format`, and `sns:publish` delivered by moto's SNS to an SQS subscriber.

What moto cannot run, or runs only in part:
- RunDateFromStartTime (a manual run without `run_date`): moto 5.2 puts `$$.Execution.StartTime` in the context object
  as a `datetime`, not AWS's ISO-8601 string, so `States.StringSplit` fails with States.Runtime (TypeError). The test
  asserts the routing there and that exact failure (or, once moto passes a string, the successful run).
- The stage functions' code: moto's "lambda simple" backend returns queued results from one FIFO per account and
  region, whatever the function, so results are queued in invocation order (one source keeps it deterministic).
- A Lambda *function error* only through the response size limit (`Function.ResponseSizeTooLarge`); the
  `Lambda.ServiceException` retrier is never exercised.
- Task / execution timeouts are not reached; the role, logging, tracing and KMS encryption are not enforced.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

import pytest

from components.orchestration import SCHEDULED_INPUT
from etlctl.mocks import ACCOUNT_ID, PlatformMocks
from etlctl.offline import Evaluation
from tests.support.definitions import states as all_states
from tests.support.emulator import Emulator, entered, scheduled_payloads, task_events
from tests.support.moto_server import REGION
from tests.support.stacks import evaluate_config

MACHINE = "aws:sfn/stateMachine:StateMachine"
COMPONENT = "etl:architectures:StepFunctions"
FUNCTION = "aws:lambda/function:Function"
BASE = {"aws:region": REGION, "etl-platform:environment": "dev"}
STACKS: dict[str, dict[str, object]] = {
    "own-lambdas": {**BASE, "etl-platform:architectures": ["stepfunctions"]},
    "serverless-runners": {
        **BASE,
        "etl-platform:architectures": ["serverless", "stepfunctions"],
        "etl-platform:stepfunctions": {
            "runners": {stage: "serverless" for stage in ("extract", "transform", "validate", "load")}
        },
    },
}
# The component that owns the functions each stack's definition invokes.
FUNCTION_OWNER = {
    "own-lambdas": "etl:architectures:StepFunctions",
    "serverless-runners": "etl:architectures:Serverless",
}
# Over moto's 6,000,000-byte response limit: the invoke fails with FunctionError, like a crashing function.
FAILING_RESULT = json.dumps("x" * 6_000_100)
RUN_DATE = "2024-01-02"
# What extract reports about the landing prefix, published by ReportLanding.
OLDEST_WAITING_S = 7_260.5
# What the EventBridge schedule sends (SCHEDULED_INPUT with the scheduler's placeholder filled in).
SCHEDULED_RUN = {"run_date": f"{RUN_DATE}T02:00:00Z"}


# ---------------------------------------------------------------------------------------------------------------------
# Stage results shaped like etl_jobs.pipeline's (extract_landed, transform with a source, validate, load)
# ---------------------------------------------------------------------------------------------------------------------

RAW, STAGED, CURATED, QUARANTINE = (
    f"s3://etl-platform-{zone}-dev" for zone in ("raw", "staged", "curated", "quarantine")
)


def extract_result(source: str) -> dict[str, Any]:
    landing = f"{RAW}/landing/{source}/"
    return {
        "stage": "extract",
        "run_date": RUN_DATE,
        "source": source,
        "landing_uri": landing,
        "source_uris": [f"{landing}{source}-0001.csv"],
        "files": [f"{RAW}/run_date={RUN_DATE}/{source}/{source}-0001.csv"],
        "bytes": 48_213,
        "oldest_waiting_s": OLDEST_WAITING_S,
        "duration_s": 0.41,
    }


def transform_result(source: str) -> dict[str, Any]:
    raw = f"{RAW}/run_date={RUN_DATE}/{source}/{source}-0001.csv"
    return {
        "stage": "transform",
        "run_date": RUN_DATE,
        "source": source,
        "transform_id": uuid.UUID(int=1).hex,
        "staged_uri": f"{STAGED}/run_date={RUN_DATE}/source={source}/part.parquet",
        "inputs": [{"uri": raw, "bytes": 48_213, "sha256": "ab" * 32}],
        "input_sha256": "cd" * 32,
        "rows_in": 1_000,
        "blank_lines": 0,
        "ignored_columns": [],
        "duration_s": 1.2,
    }


def validate_result(*, passed: bool, quarantine_rate: float, max_quarantine_rate: float) -> dict[str, Any]:
    rows_in = 1_000
    quarantined = round(rows_in * quarantine_rate)
    failures = (
        []
        if passed
        else [
            f"quarantine rate {quarantine_rate:.4f} ({quarantined} of {rows_in} rows) is above the maximum "
            f"{max_quarantine_rate}"
        ]
    )
    return {
        "stage": "validate",
        "run_date": RUN_DATE,
        "transform_id": "ef" * 16,
        "sources": ["orders"],
        "passed": passed,
        "failures": failures,
        "quarantine_rate": quarantine_rate,
        "max_quarantine_rate": max_quarantine_rate,
        "rows_in": rows_in,
        "rows_valid": rows_in - quarantined if passed else 0,
        "rows_quarantined": quarantined if passed else rows_in,
        "reasons": {"invalid_amount": quarantined} | ({} if passed else {"batch_rejected": rows_in - quarantined}),
        "quarantine_uri": f"{QUARANTINE}/run_date={RUN_DATE}/quarantine.parquet",
        "duration_s": 0.8,
    }


LOAD_RESULT = {
    "stage": "load",
    "run_date": RUN_DATE,
    "rows_curated": 980,
    "partitions": ["order_date=2024-01-01", "order_date=2024-01-02"],
    "curated_files": [
        f"{CURATED}/order_date=2024-01-01/part-{RUN_DATE}.parquet",
        f"{CURATED}/order_date=2024-01-02/part-{RUN_DATE}.parquet",
    ],
    "removed_files": [],
    "duration_s": 0.9,
}


# ---------------------------------------------------------------------------------------------------------------------
# The rendered definition and what it references
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    stack: str
    machine_name: str
    definition: str
    functions: dict[str, str]
    """Function ARN by stage, read from the definition's Tasks."""
    topic_arn: str
    sources: list[str]
    max_quarantine_rate: float
    failure_retries: int
    """MaxAttempts of the Tasks' States.TaskFailed retrier."""


def _render(evaluation: Evaluation, stack: str) -> Rendered:
    (machine,) = [r for r in evaluation.registrations if r.type == MACHINE]
    text = machine.inputs["definition"]
    assert isinstance(text, str), "the definition is resolved in update mode"
    states = all_states(json.loads(text))
    stages = {"Extract": "extract", "Transform": "transform", "Validate": "validate", "Load": "load"}
    functions = {stage: states[name]["Parameters"]["FunctionName"] for name, stage in stages.items()}
    assert {states[name]["Resource"] for name in stages} == {"arn:aws:states:::lambda:invoke"}
    task_states = {name for name, state in states.items() if state["Type"] == "Task"}
    assert task_states == {*stages, "Retract", "Reprocess", "ReportLanding", "NotifyFailure"}, task_states
    topic_arn = states["NotifyFailure"]["Parameters"]["TopicArn"]
    (retrier,) = [r for r in states["Load"]["Retry"] if "States.TaskFailed" in r["ErrorEquals"]]
    gate = [rule for rule in states["QualityGate"]["Choices"] if "NumericGreaterThan" in rule]
    # The ARNs are those the mocks gave the program's functions, under the component expected to own them.
    mocks = PlatformMocks(region=REGION)
    registered = {
        str(mocks._created(r.type, r.name, r.inputs)[1]["arn"]): r.parent
        for r in evaluation.registrations
        if r.type == FUNCTION
    }
    for stage, arn in functions.items():
        assert arn in registered, f"{stage}: {arn} is not a function the program registers"
        assert f"{FUNCTION_OWNER[stack]}$" in registered[arn], (stage, registered[arn])
    return Rendered(
        stack=stack,
        machine_name=machine.name,
        definition=text,
        functions=functions,
        topic_arn=topic_arn,
        sources=states["DefaultSources"]["Result"],
        max_quarantine_rate=gate[0]["NumericGreaterThan"],
        failure_retries=retrier["MaxAttempts"],
    )


@pytest.fixture(scope="module", params=list(STACKS))
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    stack: str = request.param
    found = _render(evaluate_config(tmp_path_factory.mktemp(stack), STACKS[stack]), stack)
    assert set(found.functions) == {"extract", "transform", "validate", "load"}
    # Queued Lambda results are consumed in invocation order (see the module docstring): one source keeps it linear.
    assert found.sources == ["orders"]
    return found


@dataclass(frozen=True)
class Deployed:
    machine_arn: str
    queue_url: str


@pytest.fixture
def deployed(emulator: Emulator, rendered: Rendered) -> Deployed:
    """Create in moto, under the definition's own names, the functions, the alerts topic with an SQS subscriber, and
    the state machine with the rendered definition unchanged."""
    role = emulator.role(f"{rendered.machine_name}-role")
    emulator.functions(list(rendered.functions.values()), role)
    topic_arn, queue_url = emulator.alerts_topic(rendered.topic_arn.rsplit(":", 1)[1])
    assert topic_arn == rendered.topic_arn
    machine_arn = emulator.client("stepfunctions").create_state_machine(
        name=rendered.machine_name, definition=rendered.definition, roleArn=role, type="STANDARD"
    )["stateMachineArn"]
    assert machine_arn == f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{rendered.machine_name}"
    return Deployed(machine_arn, queue_url)


def _passing_results(rendered: Rendered) -> list[str]:
    return [
        json.dumps(extract_result("orders")),
        json.dumps(transform_result("orders")),
        json.dumps(
            validate_result(passed=True, quarantine_rate=0.02, max_quarantine_rate=rendered.max_quarantine_rate)
        ),
        json.dumps(LOAD_RESULT),
    ]


CHECKS = ["CheckSources", "DefaultSources", "CheckRunDate"]
DATED = ["CheckDate", "IsDate"]
HAPPY_PATH = [
    "Corrections",
    "Sources",
    "CheckSource",
    "Extract",
    "Transform",
    "ReportLanding",
    "Validate",
    "QualityGate",
    "Load",
    "Succeeded",
]


# ---------------------------------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------------------------------


def test_the_scheduled_run_succeeds_and_alerts_nobody(
    emulator: Emulator, rendered: Rendered, deployed: Deployed
) -> None:
    assert set(SCHEDULED_RUN) == set(SCHEDULED_INPUT)
    emulator.queue_lambda_results(*_passing_results(rendered))

    description, events = emulator.execute(deployed.machine_arn, SCHEDULED_RUN)

    assert description["status"] == "SUCCEEDED", description
    assert entered(events) == [*CHECKS, "RunDateFromInput", *DATED, *HAPPY_PATH]
    # Each stage got the event the stage handlers read (etl_jobs.handlers), the gate's threshold included.
    assert scheduled_payloads(events) == [
        {"stage": "extract", "run_date": RUN_DATE, "source": "orders"},
        {"stage": "transform", "run_date": RUN_DATE, "source": "orders"},
        {"stage": "validate", "run_date": RUN_DATE, "max_quarantine_rate": rendered.max_quarantine_rate},
        {"stage": "load", "run_date": RUN_DATE},
    ]
    output = json.loads(description["output"])
    assert output["run_date"] == RUN_DATE, "the scheduler's timestamp is cut to its date"
    assert output["per_source"][0]["transform"] == {"Payload": transform_result("orders")}
    assert output["validate"]["Payload"]["quarantine_rate"] == 0.02
    assert output["load"] == {"Payload": LOAD_RESULT}
    assert emulator.alerts(deployed.queue_url) == []
    # What extract saw of landing reached CloudWatch, as the landing-wait alarm reads it.
    pipeline = rendered.machine_name.removesuffix("-machine")
    datapoints = emulator.client("cloudwatch").get_metric_statistics(
        Namespace="EtlPlatform",
        MetricName="OldestWaitingLandedFileSeconds",
        Dimensions=[{"Name": "Pipeline", "Value": pipeline}],
        StartTime=description["startDate"] - timedelta(minutes=5),
        EndTime=description["stopDate"] + timedelta(minutes=5),
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert datapoints and {point["Maximum"] for point in datapoints} == {OLDEST_WAITING_S}


def test_a_manual_run_without_a_date_takes_the_start_time_branch(
    emulator: Emulator, rendered: Rendered, deployed: Deployed
) -> None:
    """In AWS `$$.Execution.StartTime` is an ISO-8601 string; moto 5.2 puts a `datetime` in the context object, so
    `States.StringSplit` in RunDateFromStartTime fails with States.Runtime (a TypeError) before any stage runs. What
    runs is asserted: an input without `run_date` is routed to RunDateFromStartTime, and the failure is exactly that
    limitation. Should moto pass a string, the run must succeed with the start date as `run_date`."""
    emulator.queue_lambda_results(*_passing_results(rendered))

    description, events = emulator.execute(deployed.machine_arn, {})

    states = entered(events)
    assert states[:4] == [*CHECKS, "RunDateFromStartTime"]
    if description["status"] == "FAILED":
        assert description.get("error") == "States.Runtime", description
        assert "TypeError" in description["cause"] and "datetime" in description["cause"], description["cause"]
        assert states == [*CHECKS, "RunDateFromStartTime"]
        assert scheduled_payloads(events) == []
        return
    assert description["status"] == "SUCCEEDED", description
    started = description["startDate"].astimezone(UTC).date().isoformat()
    assert json.loads(description["output"])["run_date"] == started


def test_a_transient_stage_failure_is_retried_and_the_run_succeeds(
    emulator: Emulator, rendered: Rendered, deployed: Deployed
) -> None:
    extract, *rest = _passing_results(rendered)
    emulator.queue_lambda_results(FAILING_RESULT, extract, *rest)

    description, events = emulator.execute(deployed.machine_arn, SCHEDULED_RUN)

    assert description["status"] == "SUCCEEDED", description
    assert entered(events) == [*CHECKS, "RunDateFromInput", *DATED, *HAPPY_PATH]
    extract_events = task_events(events, "Extract")
    # One state entry, two attempts: the failure is retried inside the state, not caught.
    assert [event["type"] for event in extract_events] == [
        "TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskFailed", "TaskScheduled", "TaskStarted",
        "TaskSucceeded", "TaskStateExited",
    ]  # fmt: skip
    failed = next(e for e in extract_events if e["type"] == "TaskFailed")["taskFailedEventDetails"]
    assert failed["error"] == "Function.ResponseSizeTooLarge"
    assert emulator.alerts(deployed.queue_url) == []


def test_a_failed_validation_gate_alerts_once_and_loads_nothing(
    emulator: Emulator, rendered: Rendered, deployed: Deployed
) -> None:
    rejected = validate_result(passed=False, quarantine_rate=0.3, max_quarantine_rate=rendered.max_quarantine_rate)
    extract, transform, _, _ = _passing_results(rendered)
    emulator.queue_lambda_results(extract, transform, json.dumps(rejected))

    description, events = emulator.execute(deployed.machine_arn, SCHEDULED_RUN)

    assert description["status"] == "FAILED", description
    assert description.get("error") == "PipelineFailed"
    assert entered(events) == [
        *CHECKS, "RunDateFromInput", *DATED, *HAPPY_PATH[:8], "QualityGateFailed", "NotifyFailure", "Failed",
    ]  # fmt: skip
    assert len(scheduled_payloads(events)) == 3, "load must not be invoked"
    [(subject, message)] = emulator.alerts(deployed.queue_url)
    assert subject == f"{rendered.machine_name.removesuffix('-machine')}: quality gate failed"
    assert (
        f"run {RUN_DATE} stopped at the quality gate (quarantine rate 0.3 above {rendered.max_quarantine_rate}, "
        in message
    )
    assert "1000 of 1000 rows quarantined" in message and "nothing was published" in message
    assert "s3://" not in message, "no URIs or stage results in the alert"


def test_a_stage_failing_every_attempt_is_caught_and_alerted_once(
    emulator: Emulator, rendered: Rendered, deployed: Deployed
) -> None:
    attempts = 1 + rendered.failure_retries
    extract, transform, validate, _ = _passing_results(rendered)
    emulator.queue_lambda_results(extract, transform, validate, *[FAILING_RESULT] * attempts)

    description, events = emulator.execute(deployed.machine_arn, SCHEDULED_RUN)

    assert description["status"] == "FAILED", description
    assert entered(events) == [
        *CHECKS, "RunDateFromInput", *DATED, *HAPPY_PATH[:9], "FailedLoad", "Alert", "NotifyFailure", "Failed",
    ]  # fmt: skip
    assert [e["type"] for e in task_events(events, "Load")].count("TaskFailed") == attempts
    [(subject, message)] = emulator.alerts(deployed.queue_url)
    assert subject.endswith(": run failed")
    assert f"run {RUN_DATE} failed at load with Function.ResponseSizeTooLarge" in message
    assert "s3://" not in message and "quarantine_rate" not in message
