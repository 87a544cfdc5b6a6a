"""Every stage of every stack file, run under exactly the role the program renders for it, with IAM enforced.

For each stack file (and a stack whose orchestrator runs every stage on its own Lambdas), the program is evaluated
under the mocks and each state machine is read: for every stage Task, the runner it names (a Lambda function or an ECS
task definition), that runner's role and the role's rendered inline policies, and the parameters the Task sends
(evaluated for a run as Step Functions would: the container command, the Lambda payload). A moto server enforcing
IAM then gets buckets under the rendered names, a landed file, and a role holding exactly those policies; each stage
runs through its real entry point with the role's credentials and the environment the program renders for it:
`python -m etl_jobs` with the Task's command for a Fargate task, the stage handler in process with the Task's
payload for a Lambda. The serverless architecture's event path (the extract and process functions) runs the same way;
a stream's compaction starts from a micro-batch its consumer handler staged under the consumer's rendered role.
A missing grant fails the stage with exit code 5 / the job's permission error naming the denied action and key.

The database runner's stages (`etl_jobs.handlers.command` with the Task's `argv`, `--engine postgres`) run here on
the Polars engine: the engine never touches storage, so every S3 call a stage makes is its caller's and the same on
any engine, while the SQL itself goes to Aurora over the driver inside the VPC, which neither moto nor this harness
serves: its login (`rds-db:connect` as the runner user, the master secret for migrate) is checked on the rendered
policy in tests/unit/test_database.py, the runner user's privileges on a local PostgreSQL in
tests/jobs/test_postgres_migrations.py. Its migration step touches no lake zone.

EMR stages (a job run under its stage's job role, or a step on a cluster under its instance role) run the Spark
engine, which cannot reach moto's S3 here (no S3A jar). Every S3 call the job makes is the shared driver-side boto3
code (the engine only transforms bytes), so the stage is replayed as `python -m etl_jobs <stage>` with the arguments
the Task gives the entry module (`--stage X` becomes the command) and the environment its Spark settings give the
driver, under the role the job would run under: the data-path grants are checked against the declaration that way.

What moto does not evaluate (see tests/support/iam.py): IAM conditions (so `s3:prefix` is checked by the harness's
list check, built here from the rendered ListBucket conditions, and `kms:ViaService` not at all), KMS (objects are
not encrypted), resource policies and the roles' trust policies.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "rendered-role-tests")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "EtlPlatformTests")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")

from etl_jobs.handlers import extract, process, stream_consumer
from etlctl.offline import Evaluation
from tests.support.definitions import MACHINE, arn_of, definition_of, parameters, states
from tests.support.handlers import LambdaContext, scheduler_event, sqs_record
from tests.support.iam import EnforcingMoto, enforcing_moto, run_under_policy, under_policy
from tests.support.kinesis import kinesis_event
from tests.support.orders import csv_bytes, row
from tests.support.stacks import STACKS, evaluate_config, evaluated

RUN_DATE = "2024-05-01"
GOOD_ROWS = 20
EXECUTION = "rendered-role-test"
STAGES = ("Extract", "Transform", "Validate", "Load")
STREAM_SOURCE = "ETL_STREAM_SOURCE"
COLLECT = "etl_jobs.handlers.stage_collect.handler"
CONSUMER = "etl_jobs.handlers.stream_consumer.handler"
OWN_LAMBDAS = {
    "aws:region": "eu-west-1",
    "etl-platform:environment": "dev",
    "etl-platform:architectures": ["stepfunctions"],
}


@pytest.fixture(scope="module")
def iam_moto() -> Iterator[EnforcingMoto]:
    with enforcing_moto() as server:
        yield server


_evaluations: dict[str, Evaluation] = {}


def stack(name: str, tmp_path_factory: pytest.TempPathFactory) -> Evaluation:
    if name not in _evaluations:
        _evaluations[name] = (
            evaluate_config(tmp_path_factory.mktemp(name), OWN_LAMBDAS) if name == "own-lambdas" else evaluated(name)
        )
    return _evaluations[name]


# ---------------------------------------------------------------------------------------------------------------------
# Reading the rendered program
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    name: str
    documents: list[dict[str, Any]]

    def list_prefixes(self) -> list[tuple[str, str]]:
        """(bucket, prefix) the rendered ListBucket statements allow: what their `s3:prefix` conditions say."""
        allowed = []
        for document in self.documents:
            for statement in document["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if "s3:ListBucket" not in actions:
                    continue
                resources = (
                    statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                )
                condition = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix", ["*"])
                for resource in resources:
                    bucket = resource.removeprefix("arn:aws:s3:::")
                    allowed += [(bucket, prefix.removesuffix("*")) for prefix in condition]
        return allowed


def _by_arn(evaluation: Evaluation, token: str) -> dict[str, Any]:
    return {arn_of(r): r for r in evaluation.registrations if r.type == token}


def role_of(evaluation: Evaluation, role_arn: str) -> Role:
    name = role_arn.rsplit("/", 1)[1]
    documents = [
        json.loads(r.inputs["policy"])
        for r in evaluation.registrations
        if r.type == "aws:iam/rolePolicy:RolePolicy" and r.inputs["role"] == name
    ]
    assert documents, f"role {name} has no inline policy"
    return Role(name, documents)


@dataclass(frozen=True)
class StageRun:
    stage: str
    runner: str
    """`lambda` or `ecs`."""
    role: Role
    environment: dict[str, str]
    sent: Any
    """What the Task sends: the container command or the Lambda payload."""
    handler: str = ""


def _spark_environment(arguments: list[str], prefix: str) -> dict[str, str]:
    """The driver's environment in `--conf <prefix>KEY=VALUE` arguments."""
    pairs = [arguments[i + 1] for i, part in enumerate(arguments) if part == "--conf"]
    return {
        key.removeprefix(prefix): value for key, _, value in (p.partition("=") for p in pairs) if key.startswith(prefix)
    }


def _emr_run(evaluation: Evaluation, every: dict[str, Any], name: str, task: dict[str, Any], sent: Any) -> StageRun:
    """An EMR stage as the CLI replays it: the entry module's arguments, the driver's environment, the job's role."""
    if task["Resource"].endswith("emr-serverless:startJobRun.sync"):
        submit = sent["JobDriver"]["SparkSubmit"]
        arguments = submit["EntryPointArguments"]
        environment = _spark_environment(submit["SparkSubmitParameters"].split(), "spark.emr-serverless.driverEnv.")
        role = role_of(evaluation, sent["ExecutionRoleArn"])
    else:
        command = sent["Step"]["HadoopJarStep"]["Args"]
        entry = next(i for i, part in enumerate(command) if part.endswith(".py"))
        arguments = command[entry + 1 :]
        environment = _spark_environment(command[:entry], "spark.yarn.appMasterEnv.")
        profile_name = every["EmrCreateCluster"]["Parameters"]["JobFlowRole"]
        (profile,) = [
            r for r in evaluation.registrations
            if r.type == "aws:iam/instanceProfile:InstanceProfile" and r.outputs.get("name") == profile_name
        ]  # fmt: skip
        (role_resource,) = [
            r for r in evaluation.registrations
            if r.type == "aws:iam/role:Role" and r.outputs.get("name") == profile.inputs["role"]
        ]  # fmt: skip
        role = role_of(evaluation, arn_of(role_resource))
    assert arguments[0] == "--stage", arguments
    return StageRun(stage=name.lower(), runner="ecs", role=role, environment=environment, sent=arguments[1:])


def stage_runs(evaluation: Evaluation, machine: Any) -> list[StageRun]:
    every = states(definition_of(machine))
    functions = _by_arn(evaluation, "aws:lambda/function:Function")
    tasks = _by_arn(evaluation, "aws:ecs/taskDefinition:TaskDefinition")
    # A stream's compaction runs for its stream's source; every other pipeline for the landed file's.
    extract = functions.get(every["Extract"]["Parameters"].get("FunctionName"))
    source = extract.inputs["environment"]["variables"].get(STREAM_SOURCE, "orders") if extract else "orders"
    runs = []
    for name in STAGES:
        task = every[name]
        state = {"run_date": RUN_DATE, "source": source, "emr_cluster": {"ClusterId": "j-TEST"}}
        context = {"Execution": {"Name": EXECUTION, "Id": f"arn:execution:{EXECUTION}", "RedriveCount": 0},
                   "State": {"RetryCount": 0}}  # fmt: skip
        sent = parameters(task["Parameters"], state, context)
        if ":emr-serverless:" in task["Resource"] or ":elasticmapreduce:" in task["Resource"]:
            runs.append(_emr_run(evaluation, every, name, task, sent))
        elif task["Resource"].endswith(":lambda:invoke"):
            function = functions[task["Parameters"]["FunctionName"]]
            runs.append(
                StageRun(
                    stage=name.lower(),
                    runner="lambda",
                    role=role_of(evaluation, function.inputs["role"]),
                    environment=dict(function.inputs["environment"]["variables"]),
                    sent=sent["Payload"],
                    handler=function.inputs["handler"],
                )
            )
        elif ":glue:startJobRun" in task["Resource"]:
            # A Glue job: the stage's S3 calls are the job code's shared driver-side ones, run here through the CLI
            # (the Polars engine; Spark has no S3A jar here) under the job's role, with the zones Glue passes it.
            (job,) = [j for j in evaluation.resources if j.type == "aws:glue/job:Job"
                      and j.inputs["name"] == task["Parameters"]["JobName"]]  # fmt: skip
            arguments = dict(sent["Arguments"])
            command = [arguments.pop("--stage")] + [item for pair in arguments.items() for item in pair]
            zones = {k[2:]: v for k, v in job.inputs["defaultArguments"].items() if k[2:].startswith("ETL_")}
            runs.append(
                StageRun(
                    stage=name.lower(),
                    runner="ecs",
                    role=role_of(evaluation, job.inputs["roleArn"]),
                    environment=zones,
                    sent=command,
                )
            )
        else:
            definition = tasks[task["Parameters"]["TaskDefinition"]]
            (container,) = json.loads(definition.inputs["containerDefinitions"])
            runs.append(
                StageRun(
                    stage=name.lower(),
                    runner="ecs",
                    role=role_of(evaluation, definition.inputs["taskRoleArn"]),
                    environment={v["name"]: v["value"] for v in container["environment"]},
                    sent=sent["Overrides"]["ContainerOverrides"][0]["Command"],
                )
            )
    return runs


def chains(name: str, evaluation: Evaluation) -> dict[str, list[StageRun]]:
    """Each state machine of the stack, by a label naming its runners: its four stage runs."""
    found = {}
    for machine in (r for r in evaluation.registrations if r.type == MACHINE):
        runs = stage_runs(evaluation, machine)
        label = f"{name}/{machine.name.removeprefix('etl-platform-').removesuffix('-machine')}"
        found[label] = runs
    return found


# ---------------------------------------------------------------------------------------------------------------------
# Running on moto
# ---------------------------------------------------------------------------------------------------------------------


def buckets_of(environment: dict[str, str]) -> dict[str, str]:
    return {
        zone: environment[f"ETL_{zone.upper()}_URI"].removeprefix("s3://").split("/", 1)[0]
        for zone in ("raw", "staged", "curated", "quarantine")
    }


def prepare(server: EnforcingMoto, evaluation: Evaluation, environment: dict[str, str], first: str = "") -> None:
    """Buckets under the rendered names and the run's input: a landed file, or for a stream's compaction (whose
    first stage is `first`, the collect handler) a micro-batch staged by the stream's consumer under its own
    rendered role."""
    server.reset()
    s3 = server.admin("s3")
    artifacts = next(
        r.name
        for r in evaluation.registrations
        if r.type == "aws:s3/bucket:Bucket" and r.name.endswith("lake-artifacts")
    )
    (bucket,) = [r for r in evaluation.registrations if r.type == "aws:s3/bucket:Bucket" and r.name == artifacts]
    for name in {*buckets_of(environment).values(), arn_of(bucket).removeprefix("arn:aws:s3:::")}:
        s3.create_bucket(Bucket=name)
    landing = environment.get("ETL_LANDING_PREFIX", "landing/")
    # One bad row in 21: under every stack's gate (prod's is 0.05), so the chain runs to load.
    lines = [*(row(f"O{n}") for n in range(GOOD_ROWS)), row("BAD", status="?")]
    if first == COLLECT:
        stage_stream(server, evaluation, environment[STREAM_SOURCE], lines)
        return
    s3.put_object(Bucket=buckets_of(environment)["raw"], Key=f"{landing}orders/{RUN_DATE}.csv", Body=csv_bytes(*lines))


def stage_stream(server: EnforcingMoto, evaluation: Evaluation, source: str, lines: list[str]) -> None:
    """One Kinesis batch of `lines` through the stream's consumer handler, under the consumer's rendered role."""
    (consumer,) = [
        r
        for r in evaluation.registrations
        if r.type == "aws:lambda/function:Function"
        and r.inputs["handler"] == CONSUMER
        and r.inputs["environment"]["variables"][STREAM_SOURCE] == source
    ]
    records = [
        {
            "PartitionKey": f"O{number}",
            "SequenceNumber": str(number + 1),
            "Data": line.encode() + b"\n",
            "ApproximateArrivalTimestamp": datetime(2024, 5, 1, 10, tzinfo=UTC),
        }
        for number, line in enumerate(lines)
    ]
    event = kinesis_event("arn:aws:kinesis:eu-west-1:123456789012:stream/orders", "shardId-000000000000", records)
    role = role_of(evaluation, consumer.inputs["role"])
    environment = dict(consumer.inputs["environment"]["variables"])
    with under_policy(server, role.documents, environment, list_prefixes=role.list_prefixes()):
        assert stream_consumer.handler(event, LambdaContext()) == {"batchItemFailures": []}


def run(server: EnforcingMoto, step: StageRun) -> dict[str, Any]:
    """One stage under its role; its result (the handler's return value, or the result object it wrote)."""
    if step.runner == "ecs":
        completed = run_under_policy(
            server, step.role.documents, step.sent, step.environment, list_prefixes=step.role.list_prefixes()
        )
        assert completed.returncode == 0, f"{step.stage} on {step.role.name}: {completed.stderr[-2000:]}"
        uri = step.sent[step.sent.index("--result-uri") + 1]
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        result: dict[str, Any] = json.loads(server.admin("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
        return result
    module_name, _, function_name = step.handler.rpartition(".")
    handler = getattr(__import__(module_name, fromlist=[function_name]), function_name)
    with under_policy(server, step.role.documents, step.environment, list_prefixes=step.role.list_prefixes()):
        result = handler(on_polars(step.sent), LambdaContext())
    return result


def on_polars(sent: Any) -> Any:
    """A command handler's payload with its SQL engine swapped for Polars (see the module docstring); other payloads
    as they are."""
    if not (isinstance(sent, dict) and "argv" in sent):
        return sent
    argv = list(sent["argv"])
    engine = argv.index("--engine") + 1
    assert argv[engine] == "postgres", f"the database runner renders --engine postgres, got {argv}"
    argv[engine] = "polars"
    return {**sent, "argv": argv}


STACK_NAMES = [*STACKS, "own-lambdas"]


@pytest.mark.parametrize("name", STACK_NAMES)
def test_every_stage_chain_runs_under_its_rendered_roles(
    name: str, iam_moto: EnforcingMoto, tmp_path_factory: pytest.TempPathFactory
) -> None:
    evaluation = stack(name, tmp_path_factory)
    found = chains(name, evaluation)
    if not found:
        pytest.skip(f"stack {name} runs no pipeline")
    for label, steps in found.items():
        prepare(iam_moto, evaluation, steps[0].environment, steps[0].handler)
        results = {step.stage: run(iam_moto, step) for step in steps}
        assert results["validate"]["passed"] is True, (label, results["validate"])
        assert results["load"]["rows_curated"] == GOOD_ROWS, (label, results["load"])
        curated = buckets_of(steps[0].environment)["curated"]
        listed = iam_moto.admin("s3").list_objects_v2(Bucket=curated, Prefix="order_date=")["Contents"]
        assert [o["Key"] for o in listed] == [f"order_date={RUN_DATE}/part-00000.parquet"], label


@pytest.mark.parametrize("name", [n for n in STACKS if n != "own-lambdas"])
def test_the_serverless_event_path_runs_under_its_rendered_roles(
    name: str, iam_moto: EnforcingMoto, tmp_path_factory: pytest.TempPathFactory
) -> None:
    evaluation = stack(name, tmp_path_factory)
    functions = {r.name: r for r in evaluation.registrations if r.type == "aws:lambda/function:Function"}
    if "etl-platform-serverless-extract-function" not in functions:
        pytest.skip(f"stack {name} does not select serverless")
    extract_function = functions["etl-platform-serverless-extract-function"]
    process_function = functions["etl-platform-serverless-process-function"]
    environment = dict(extract_function.inputs["environment"]["variables"])
    prepare(iam_moto, evaluation, environment)
    queue = next(
        r for r in evaluation.registrations if r.type == "aws:sqs/queue:Queue" and r.name.endswith("serverless-work")
    )
    queue_name = arn_of(queue).rsplit(":", 1)[1]
    sqs = iam_moto.admin("sqs", region="eu-west-1")
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    from etl_jobs.handlers import _runtime

    _runtime.sqs_client.cache_clear()
    extract_role = role_of(evaluation, extract_function.inputs["role"])
    with under_policy(
        iam_moto, extract_role.documents, {**environment, "ETL_WORK_QUEUE_URL": url, "AWS_REGION": "eu-west-1"},
        list_prefixes=extract_role.list_prefixes(),
    ):  # fmt: skip
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = "eu-west-1"
        sent = extract.handler(scheduler_event(scheduled_time=f"{RUN_DATE}T02:00:00Z"), LambdaContext())["messages"]
    _runtime.sqs_client.cache_clear()
    assert sent and sent[0]["deliveries"] == 1
    process_role = role_of(evaluation, process_function.inputs["role"])
    with under_policy(
        iam_moto, process_role.documents, dict(process_function.inputs["environment"]["variables"]),
        list_prefixes=process_role.list_prefixes(),
    ):  # fmt: skip
        response = process.handler({"Records": [sqs_record("m1", json.dumps(sent[0]))]}, LambdaContext())
    assert response["batchItemFailures"] == []
    curated = buckets_of(environment)["curated"]
    assert iam_moto.admin("s3").list_objects_v2(Bucket=curated, Prefix="order_date=")["KeyCount"] == 1
