"""The state machine definition THE PROGRAM renders, executed on moto's Step Functions engine (a moto server process).

Unlike test_workflow_execution.py, which builds definitions in the test, this evaluates `__main__.py` under the
Pulumi mocks (`tests.conftest.evaluate_config`), takes the `definition` input of the StepFunctions component's
`aws:sfn/stateMachine:StateMachine` registration as JSON text, and creates it unchanged in moto. Two stacks:
- `own-lambdas`: `architectures: [stepfunctions]`, every stage on the orchestrator's own Lambdas;
- `serverless-engines`: `[serverless, stepfunctions]` with every stage on the serverless functions (the dev stack).

No ARN is rewritten: the mocks name resources `<name>-<7 hex>` in account 123456789012, which is moto's default
account, and the stacks are evaluated in us-east-1, the server's region, so moto's `create_function` / `create_topic`
with the names in the definition return exactly the definition's ARNs (the fixture asserts it).

What runs, on the rendered definition: RunDate (Choice on `IsPresent`, then
`States.ArrayGetItem(States.StringSplit($.run_date, 'T'), 0)` on the scheduler's timestamp), the Parallel extract, the Map transform with its
`ItemSelector` over `$$.Map.Item.Value`, `lambda:invoke` Tasks with their ResultSelector, the production Retry (the
`States.TaskFailed` retrier, interval 5 s, backoff 2.0, full jitter: moto really sleeps, so one retry costs 0-5 s),
the top-level Catch into NotifyFailure, the QualityGate Choice (Or/Not/IsPresent, BooleanEquals,
NumericGreaterThan), the Pass that builds the gate's error with `States.JsonToString`, and `sns:publish` delivered by
moto's SNS to an SQS subscriber. Every Task of the definition is a `lambda:invoke` stage or an `sns:publish` notice
(the fixture asserts it), so no state of the rendered definition is left out for lack of an integration.

What moto cannot run, or runs only in part:
- RunDateFromStartTime (a manual run without `run_date`): moto 5.2 puts `$$.Execution.StartTime` in the context object
  as a `datetime`, not AWS's ISO-8601 string, so `States.StringSplit` fails with States.Runtime (TypeError). The test
  asserts the Choice's routing there and that exact failure (or, once moto passes a string, the successful run).
- The stage functions' code: moto's "lambda simple" backend returns queued results (shaped like `etl_jobs.pipeline`
  stage results) from one FIFO per account and region, whatever the function. So the results are queued in
  invocation order, which is deterministic only because both stacks have one source (asserted in the fixture).
- A Lambda *function error* cannot be queued, except through the response size limit: a result over 6 MB makes the
  invoke fail with `Function.ResponseSizeTooLarge` (a `States.TaskFailed`), which stands in for a crashing stage.
- The first retrier (`Lambda.ServiceException`, `Lambda.TooManyRequestsException`, ...): "lambda simple" never
  raises them, so only the `States.TaskFailed` retrier is exercised.
- Task / execution timeouts (900 s / 3600 s) are not reached; the state machine's role, logging, tracing and KMS
  encryption are not enforced by moto (the machine is created with the definition, name and a role only).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import pytest

from components.architectures.stepfunctions import RUN_DATE_STATE, SCHEDULED_INPUT
from etlctl.mocks import ACCOUNT_ID, PlatformMocks
from etlctl.offline import Evaluation
from tests.conftest import evaluate_config
from tests.integration.conftest import Emulator, entered
from tests.support.moto_server import REGION

MACHINE = "aws:sfn/stateMachine:StateMachine"
COMPONENT = "etl:architectures:StepFunctions"
FUNCTION = "aws:lambda/function:Function"
BASE = {"aws:region": REGION, "etl-platform:environment": "dev"}
STACKS: dict[str, dict[str, object]] = {
    "own-lambdas": {**BASE, "etl-platform:architectures": ["stepfunctions"]},
    "serverless-engines": {
        **BASE,
        "etl-platform:architectures": ["serverless", "stepfunctions"],
        "etl-platform:stepfunctions": {
            "engines": {stage: "serverless" for stage in ("extract", "transform", "validate", "load")}
        },
    },
}
# The component that owns the functions each stack's definition invokes.
FUNCTION_OWNER = {
    "own-lambdas": "etl:architectures:StepFunctions",
    "serverless-engines": "etl:architectures:Serverless",
}
# Over moto's 6,000,000-byte response limit: the invoke fails with FunctionError, like a crashing function.
FAILING_RESULT = json.dumps("x" * 6_000_100)
RUN_DATE = "2024-01-02"
# What the EventBridge schedule sends (SCHEDULED_INPUT with the scheduler's placeholders filled in).
SCHEDULED_RUN = {
    "run_date": f"{RUN_DATE}T02:00:00Z",
    "scheduler_execution_id": str(uuid.UUID(int=7)),
    "scheduler_attempt": "1",
}


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


def _states(scope: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, state in scope["States"].items():
        found[name] = state
        for branch in state.get("Branches", []):
            found |= _states(branch)
        if "ItemProcessor" in state:
            found |= _states(state["ItemProcessor"])
    return found


def _render(evaluation: Evaluation, stack: str) -> Rendered:
    (component,) = [r for r in evaluation.registrations if r.type == COMPONENT]
    (machine,) = [r for r in evaluation.registrations if r.type == MACHINE and r.parent == component.urn]
    text = machine.inputs["definition"]
    assert isinstance(text, str), "the definition is resolved in update mode"
    states = _states(json.loads(text))
    notices = {"NotifySuccess", "NotifyFailure"}
    stage_of = {"Transform partition": "transform", "Validate": "validate", "Load": "load"}
    sources = [name.removeprefix("Extract ") for name in states if name.startswith("Extract ")]
    functions: dict[str, str] = {}
    for name, state in states.items():
        stage = "extract" if name.startswith("Extract ") else stage_of.get(name)
        if stage:
            assert state["Resource"] == "arn:aws:states:::lambda:invoke", name
            functions.setdefault(stage, state["Parameters"]["FunctionName"])
    task_states = {name for name, state in states.items() if state["Type"] == "Task"}
    assert task_states == {f"Extract {source}" for source in sources} | set(stage_of) | notices, task_states
    assert {states[name]["Resource"] for name in notices} == {"arn:aws:states:::sns:publish"}
    topics = {states[name]["Parameters"]["TopicArn"] for name in notices}
    assert len(topics) == 1, topics
    (topic_arn,) = topics
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
        machine_name=machine.inputs["name"],
        definition=text,
        functions=functions,
        topic_arn=topic_arn,
        sources=sources,
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
    iam, lam, sns, sqs = (emulator.client(name) for name in ("iam", "lambda", "sns", "sqs"))
    role = iam.create_role(RoleName=f"{rendered.machine_name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    for arn in sorted(set(rendered.functions.values())):
        name = arn.split(":function:", 1)[1]
        created = lam.create_function(
            FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.handler", Code={"ZipFile": b"stub"}
        )["FunctionArn"]
        assert created == arn, "moto's ARN differs from the definition's: the account or region does not match"
    topic_name = rendered.topic_arn.rsplit(":", 1)[1]
    assert sns.create_topic(Name=topic_name)["TopicArn"] == rendered.topic_arn
    queue_url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=rendered.topic_arn, Protocol="sqs", Endpoint=queue_arn)
    machine_arn = emulator.client("stepfunctions").create_state_machine(
        name=rendered.machine_name, definition=rendered.definition, roleArn=role, type="STANDARD"
    )["stateMachineArn"]
    assert machine_arn == f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{rendered.machine_name}"
    return Deployed(machine_arn, queue_url)


# ---------------------------------------------------------------------------------------------------------------------
# Executing and reading the history
# ---------------------------------------------------------------------------------------------------------------------


def _task_events(events: list[dict[str, Any]], state: str) -> list[dict[str, Any]]:
    """The events of one Task state, from its entry to its exit (one source: no other state interleaves)."""
    start = next(
        i
        for i, e in enumerate(events)
        if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == state
    )
    end = next(
        i
        for i, e in enumerate(events)
        if i > start and e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == state
    )
    return events[start : end + 1]


def _scheduled_payloads(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `Payload` of every lambda:invoke the execution scheduled, in order."""
    found = []
    for event in events:
        details = event.get("taskScheduledEventDetails")
        if details and details["resourceType"] == "lambda":
            found.append(json.loads(details["parameters"])["Payload"])
    return found


def _alerts(emulator: Emulator, queue_url: str) -> list[dict[str, Any]]:
    """The SNS notifications in the subscriber queue, as (subject, parsed message) dicts."""
    messages = emulator.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    envelopes = [json.loads(message["Body"]) for message in messages]
    return [{"Subject": envelope.get("Subject"), "Message": json.loads(envelope["Message"])} for envelope in envelopes]


def _passing_results(rendered: Rendered) -> list[str]:
    return [
        json.dumps(extract_result("orders")),
        json.dumps(transform_result("orders")),
        json.dumps(
            validate_result(passed=True, quarantine_rate=0.02, max_quarantine_rate=rendered.max_quarantine_rate)
        ),
        json.dumps(LOAD_RESULT),
    ]


HAPPY_PATH = [
    "ExtractSources",
    "Source orders",
    "Extract orders",
    "TransformPartitions",
    "Transform partition",
    "Validate",
    "QualityGate",
    "Load",
    "NotifySuccess",
    "Succeeded",
]


# ---------------------------------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------------------------------


def test_the_scheduled_run_succeeds_and_notifies(emulator: Emulator, rendered: Rendered, deployed: Deployed) -> None:
    assert set(SCHEDULED_RUN) == set(SCHEDULED_INPUT)
    emulator.queue_lambda_results(*_passing_results(rendered))

    description, events = emulator.execute(deployed.machine_arn, SCHEDULED_RUN)

    assert description["status"] == "SUCCEEDED", description
    assert entered(events) == [RUN_DATE_STATE, "RunDateFromInput", *HAPPY_PATH]
    # Each stage got the state the contract in components.workflows describes.
    extract_event, transform_event, validate_event, load_event = _scheduled_payloads(events)
    assert extract_event == {"run_date": RUN_DATE, "source": "orders"}
    assert transform_event == {
        "run_date": RUN_DATE,
        "source": "orders",
        "extract": {"Payload": extract_result("orders")},
    }
    output = json.loads(description["output"])
    assert validate_event == {key: output[key] for key in ("run_date", "extract", "transform")}
    assert load_event == {key: output[key] for key in ("run_date", "extract", "transform", "validate")}
    # RunDateFromInput keeps the date part only and drops the scheduler's bookkeeping.
    assert output["run_date"] == RUN_DATE
    assert not {"scheduler_execution_id", "scheduler_attempt"} & set(output)
    assert output["extract"] == [
        {"run_date": RUN_DATE, "source": "orders", "extract": {"Payload": extract_result("orders")}}
    ]
    assert [item["transform"] for item in output["transform"]] == [{"Payload": transform_result("orders")}]
    assert output["validate"]["Payload"]["quarantine_rate"] == 0.02
    assert output["load"] == {"Payload": LOAD_RESULT}
    assert "MessageId" in output["notification"]
    [alert] = _alerts(emulator, deployed.queue_url)
    assert alert["Subject"] == f"{rendered.machine_name} succeeded"
    # The notice carries the whole state as it was before NotifySuccess.
    assert alert["Message"] == {key: value for key, value in output.items() if key != "notification"}


def test_a_manual_run_without_a_date_takes_the_start_time_branch(
    emulator: Emulator, rendered: Rendered, deployed: Deployed
) -> None:
    """In AWS `$$.Execution.StartTime` is an ISO-8601 string; moto 5.2 puts a `datetime` in the context object, so
    `States.StringSplit` in RunDateFromStartTime fails with States.Runtime (a TypeError) before any stage runs. What
    runs is asserted: the RunDate Choice routes an input without `run_date` to RunDateFromStartTime, and the failure
    is exactly that limitation. Should moto pass a string, the run must succeed with the start date as `run_date`."""
    emulator.queue_lambda_results(*_passing_results(rendered))

    description, events = emulator.execute(deployed.machine_arn, {})

    states = entered(events)
    assert states[:2] == [RUN_DATE_STATE, "RunDateFromStartTime"]
    if description["status"] == "FAILED":
        assert description.get("error") == "States.Runtime", description
        assert "TypeError" in description["cause"] and "datetime" in description["cause"], description["cause"]
        assert states == [RUN_DATE_STATE, "RunDateFromStartTime"]
        assert _scheduled_payloads(events) == []
        return
    assert description["status"] == "SUCCEEDED", description
    started = description["startDate"].astimezone(UTC).date().isoformat()
    assert json.loads(description["output"])["run_date"] == started
    assert _scheduled_payloads(events)[0] == {"run_date": started, "source": "orders"}


def test_a_transient_stage_failure_is_retried_and_the_run_succeeds(
    emulator: Emulator, rendered: Rendered, deployed: Deployed
) -> None:
    extract, *rest = _passing_results(rendered)
    emulator.queue_lambda_results(FAILING_RESULT, extract, *rest)

    description, events = emulator.execute(deployed.machine_arn, SCHEDULED_RUN)

    assert description["status"] == "SUCCEEDED", description
    assert entered(events) == [RUN_DATE_STATE, "RunDateFromInput", *HAPPY_PATH]
    extract_events = _task_events(events, "Extract orders")
    # One state entry, two attempts: the failure is retried inside the state, not caught.
    assert [event["type"] for event in extract_events] == [
        "TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskFailed", "TaskScheduled", "TaskStarted",
        "TaskSucceeded", "TaskStateExited",
    ]  # fmt: skip
    failed = next(e for e in extract_events if e["type"] == "TaskFailed")["taskFailedEventDetails"]
    assert failed["error"] == "Function.ResponseSizeTooLarge"
    assert json.loads(description["output"])["extract"][0]["extract"] == {"Payload": extract_result("orders")}
    [alert] = _alerts(emulator, deployed.queue_url)
    assert alert["Subject"] == f"{rendered.machine_name} succeeded"


def test_a_failed_validation_gate_alerts_and_fails_the_run(
    emulator: Emulator, rendered: Rendered, deployed: Deployed
) -> None:
    rejected = validate_result(passed=False, quarantine_rate=0.3, max_quarantine_rate=rendered.max_quarantine_rate)
    extract, transform, _, _ = _passing_results(rendered)
    emulator.queue_lambda_results(extract, transform, json.dumps(rejected))

    description, events = emulator.execute(deployed.machine_arn, SCHEDULED_RUN)

    assert description["status"] == "FAILED", description
    assert description.get("error") == "PipelineFailed"
    assert entered(events) == [
        RUN_DATE_STATE, "RunDateFromInput", *HAPPY_PATH[:7], "QualityGateFailed", "NotifyFailure", "Failed",
    ]  # fmt: skip
    assert len(_scheduled_payloads(events)) == 3, "load must not be invoked"
    [alert] = _alerts(emulator, deployed.queue_url)
    assert alert["Subject"] == f"{rendered.machine_name} failed"
    error = alert["Message"]["error"]
    assert error["Error"] == "QualityGateFailed"
    assert json.loads(error["Cause"]) == {"Payload": rejected}
    assert alert["Message"]["run_date"] == RUN_DATE
    assert "load" not in alert["Message"]


def test_a_stage_failing_every_attempt_is_caught_and_alerted(
    emulator: Emulator, rendered: Rendered, deployed: Deployed
) -> None:
    attempts = 1 + rendered.failure_retries
    extract, transform, validate, _ = _passing_results(rendered)
    emulator.queue_lambda_results(extract, transform, validate, *[FAILING_RESULT] * attempts)

    description, events = emulator.execute(deployed.machine_arn, SCHEDULED_RUN)

    assert description["status"] == "FAILED", description
    assert description.get("error") == "PipelineFailed"
    assert entered(events) == [RUN_DATE_STATE, "RunDateFromInput", *HAPPY_PATH[:8], "NotifyFailure", "Failed"]
    load_events = _task_events(events, "Load")
    assert [e["type"] for e in load_events].count("TaskFailed") == attempts
    assert "NotifySuccess" not in entered(events)
    [alert] = _alerts(emulator, deployed.queue_url)
    assert alert["Subject"] == f"{rendered.machine_name} failed"
    message = alert["Message"]
    assert message["error"]["Error"] == "Function.ResponseSizeTooLarge"
    assert "Response payload size exceeded" in message["error"]["Cause"]
    # The alert carries what the run got done before the failure.
    assert message["validate"] == {"Payload": json.loads(validate)}
    assert message["run_date"] == RUN_DATE and "load" not in message
