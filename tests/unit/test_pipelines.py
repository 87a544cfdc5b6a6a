"""The pipeline definition built from bound runners (pure: no Pulumi): its shape, the gate threshold reaching the job on
every runner, one alert per failed run with a short summary, the derived execution timeout, hooks, and statelint."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from components import asl
from components.architectures.containers import EcsTasks
from components.functions import LambdaStages, lambda_stage_budget
from components.pipelines import (
    EXPRESS_MAX_SECONDS,
    BoundRunner,
    PipelineSpec,
    ResultStore,
    StageCall,
    execution_timeout,
    express_problems,
    pipeline_definition,
)
from components.stages import Stage, StageBudget
from tests.support.definitions import statelint, states, tasks

TOPIC = "arn:aws:sns:eu-west-1:123456789012:alerts"
RESULTS = ResultStore(bucket="artifacts-bucket", kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/k")
SPEC = PipelineSpec(
    name="etl-test",
    sources=("orders", "refunds"),
    max_quarantine_rate=0.05,
    max_concurrency=1,
    log_group="/aws/vendedlogs/states/etl-test",
    region="eu-west-1",
)


def lambdas(timeout: int = 300) -> LambdaStages:
    return LambdaStages(
        architecture="serverless",
        function_arns={s: f"arn:aws:lambda:eu-west-1:123456789012:function:etl-{s.value}" for s in Stage},
        budgets={s: lambda_stage_budget(timeout) for s in Stage},
    )


def ecs(timeout: int = 3600) -> EcsTasks:
    return EcsTasks(
        architecture="containers",
        cluster_arn="arn:aws:ecs:eu-west-1:123456789012:cluster/etl",
        task_definition_arns={s: f"arn:aws:ecs:eu-west-1:123456789012:task-definition/etl-{s.value}:3" for s in Stage},
        container_name="etl",
        subnet_ids=("subnet-a", "subnet-b"),
        security_group_ids=("sg-1",),
        pass_role_arns=("arn:aws:iam::123456789012:role/exec", "arn:aws:iam::123456789012:role/task"),
        capacity_provider="FARGATE_SPOT",
        budgets={s: StageBudget(timeout_seconds=timeout, retry=asl.JOB_RETRY) for s in Stage},
    )


def build(runners: dict[Stage, BoundRunner], spec: PipelineSpec = SPEC) -> dict[str, Any]:
    machine = pipeline_definition(spec, runners, alerts_topic_arn=TOPIC, results=RESULTS)
    rendered: dict[str, Any] = json.loads(machine.to_json())
    return rendered


MIXED = {Stage.EXTRACT: lambdas(), Stage.TRANSFORM: ecs(), Stage.VALIDATE: ecs(), Stage.LOAD: lambdas()}


@pytest.mark.parametrize("mix", ["lambda", "ecs", "mixed"])
def test_every_mix_passes_statelint_and_every_task_retries_times_out_and_is_caught(mix: str, tmp_path: Path) -> None:
    runners = {"lambda": dict.fromkeys(Stage, lambdas()), "ecs": dict.fromkeys(Stage, ecs()), "mixed": MIXED}[mix]
    definition = build(runners)
    result = statelint(json.dumps(definition), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for name, task, top_level in tasks(definition):
        assert task["TimeoutSeconds"] > 0 and task["Retry"], name
        # Nested Tasks fail their Map, which catches into the alert path.
        assert not top_level or task["Catch"][0]["ErrorEquals"] == ["States.ALL"], name
    assert definition["States"]["Sources"]["Catch"][0]["Next"] == "SourcesFailed"


def test_the_gate_threshold_reaches_the_job_on_every_runner() -> None:
    for runner in (lambdas(), ecs()):
        validate = build(dict.fromkeys(Stage, runner))["States"]["Validate"]["Parameters"]
        if isinstance(runner, LambdaStages):
            assert validate["Payload"]["max_quarantine_rate"] == 0.05
        else:
            command = validate["Overrides"]["ContainerOverrides"][0]["Command.$"]
            assert "'--max-quarantine-rate', '0.05'" in command
    gate = build(MIXED)["States"]["QualityGate"]["Choices"]
    assert gate[2]["NumericGreaterThan"] == 0.05


def test_a_runner_without_a_payload_writes_the_object_the_next_state_reads() -> None:
    definition = build(MIXED)
    every = states(definition)
    command = every["Validate"]["Parameters"]["Overrides"]["ContainerOverrides"][0]["Command.$"]
    key = every["ReadValidateResult"]["Parameters"]["Key.$"]
    assert (
        "'--result-uri', States.Format('s3://artifacts-bucket/results/{}/validate.json', $$.Execution.Name)" in command
    )
    assert key == "States.Format('results/{}/validate.json', $$.Execution.Name)"
    assert (
        every["ReadValidateResult"]["ResultPath"] == "$.validate"
        and every["ReadValidateResult"]["Next"] == "QualityGate"
    )
    # Per-source stages key their object by source too, so parallel iterations never share one.
    transform_key = every["ReadTransformResult"]["Parameters"]["Key.$"]
    assert transform_key == "States.Format('results/{}/transform-{}.json', $$.Execution.Name, $.source)"
    # A Lambda stage's own result is the payload: no read.
    assert "ReadLoadResult" not in every and every["Load"]["ResultPath"] == "$.load"


def test_stage_calls_carry_the_run_date_source_and_stage() -> None:
    call = StageCall(Stage.TRANSFORM, per_source=True)
    assert call.command() == "States.Array('transform', '--run-date', $.run_date, '--source', $.source)"
    assert call.event() == {"stage": "transform", "run_date.$": "$.run_date", "source.$": "$.source"}
    assert StageCall(Stage.LOAD, per_source=False).arguments() == ["'load'", "'--run-date'", "$.run_date"]


def test_one_failed_run_sends_one_short_alert_and_never_the_whole_state() -> None:
    definition = build(MIXED)
    every = states(definition)
    publishes = [name for name, task, _ in tasks(definition) if task["Resource"].endswith(":sns:publish")]
    assert publishes == ["NotifyFailure"], "a successful run sends nothing; a failed one publishes once"
    assert every["NotifyFailure"]["Parameters"]["Message.$"] == "$.alert.message"
    assert "JsonToString($)" not in json.dumps(definition)
    summary = every["Alert"]["Parameters"]["message.$"]
    for part in ("$.run_date", "$.failed_stage", "$.error.Error", "$$.Execution.Id", "/v2/executions/details/"):
        assert part in summary
    for stage in ("Validate", "ReadValidateResult", "Load"):
        failed = every[stage]["Catch"][0]["Next"]
        assert every[failed]["Next"] == "Alert" and every[failed]["ResultPath"] == "$.failed_stage"
    gate = every["QualityGateFailed"]["Parameters"]["message.$"]
    assert "$.validate.Payload.rows_in" in gate and "$.validate.Payload.quarantine_rate" in gate


def test_the_execution_timeout_covers_every_stage_with_its_retries() -> None:
    definition = build(dict.fromkeys(Stage, ecs()))
    # Four one-hour tasks, each retried once, outlast the old fixed 3600 s many times over.
    assert definition["TimeoutSeconds"] >= 4 * 2 * 3600
    longer = build(dict.fromkeys(Stage, ecs(timeout=7200)))
    assert longer["TimeoutSeconds"] > definition["TimeoutSeconds"]
    # The per-source stages repeat once per round of the Map: two sources one at a time take two rounds.
    both = build(dict.fromkeys(Stage, ecs()), dataclasses.replace(SPEC, max_concurrency=2))
    assert definition["TimeoutSeconds"] - both["TimeoutSeconds"] >= 2 * 2 * 3600


def test_the_timeout_is_at_least_the_sum_of_what_the_tasks_render() -> None:
    definition = build(MIXED)

    def worst(task: dict[str, Any]) -> int:
        attempts = 1 + sum(r["MaxAttempts"] for r in task.get("Retry", []))
        return int(attempts * task["TimeoutSeconds"])

    top = sum(worst(task) for _, task, top_level in tasks(definition) if top_level)
    per_source = sum(worst(task) for _, task, top_level in tasks(definition) if not top_level)
    assert definition["TimeoutSeconds"] >= top + 2 * per_source


def test_express_refuses_jobs_and_long_runs() -> None:
    waits = express_problems(SPEC, MIXED)
    assert any("cannot wait for a job (transform on containers, validate on containers)" in p for p in waits)
    slow = express_problems(SPEC, dict.fromkeys(Stage, lambdas(timeout=300)))
    assert len(slow) == 1 and f"above the {EXPRESS_MAX_SECONDS} s an EXPRESS execution may last" in slow[0]
    assert execution_timeout(SPEC, dict.fromkeys(Stage, lambdas(timeout=300))) > EXPRESS_MAX_SECONDS
    quick = dict.fromkeys(Stage, LambdaStages("serverless", lambdas().function_arns, {
        s: StageBudget(timeout_seconds=5, retry=()) for s in Stage
    }))  # fmt: skip
    assert 4 * 5 < execution_timeout(dataclasses.replace(SPEC, max_concurrency=2), quick) < EXPRESS_MAX_SECONDS
    assert express_problems(dataclasses.replace(SPEC, max_concurrency=2), quick) == []


def test_input_is_checked_before_use() -> None:
    every = states(build(MIXED))
    assert build(MIXED)["StartAt"] == "CheckSources"
    assert every["DefaultSources"]["Result"] == ["orders", "refunds"]
    assert every["InvalidSources"]["Parameters"]["Cause"].endswith("(orders, refunds)")
    check = every["CheckSource"]["Choices"][0]["And"]
    assert {"Variable": "$.source", "IsString": True} in check
    assert every["UnknownSource"]["Type"] == "Fail" and every["InvalidInput"]["Next"] == "NotifyFailure"


@dataclasses.dataclass(frozen=True)
class WithSteps(LambdaStages):
    """Lambda stages plus a setup, a teardown and steps around validate, as a cluster runner would have."""

    returns_payload: ClassVar[bool] = True

    def setup_states(self, next_state: str) -> tuple[asl.State, ...]:
        return (asl.Pass(name="CreateCluster", next=next_state),)

    def teardown_states(self, label: str, next_state: str, on_error: str) -> tuple[asl.State, ...]:
        return (
            asl.Task(
                name=f"TerminateCluster{label}",
                resource="arn:aws:states:::aws-sdk:emr:terminateJobFlows",
                parameters={"JobFlowIds.$": "States.Array($.cluster)"},
                catch=(asl.Catch(on_error),),
                next=next_state,
            ),
        )

    def before(self, stage: Stage, next_state: str) -> tuple[asl.State, ...]:
        return (asl.Pass(name="Migrate", next=next_state),) if stage is Stage.VALIDATE else ()

    def after(self, stage: Stage, next_state: str) -> tuple[asl.State, ...]:
        return (asl.Pass(name="Publish", next=next_state),) if stage is Stage.LOAD else ()


def test_hooks_run_where_the_runner_puts_them(tmp_path: Path) -> None:
    runner = WithSteps(lambdas().architecture, lambdas().function_arns, lambdas().budgets)
    definition = build(dict.fromkeys(Stage, runner))
    every = states(definition)
    assert every["IsDate"]["Choices"][0]["Next"] == "CreateCluster" and every["CreateCluster"]["Next"] == "Corrections"
    assert every["Corrections"]["Default"] == "Sources", "corrections run on a runner that is set up"
    assert every["Sources"]["Next"] == "ReportLanding" and every["Migrate"]["Next"] == "Validate"
    # The landing metric is published whatever the runner, and its failure never stops the run.
    assert every["ReportLanding"]["Next"] == every["ReportLanding"]["Catch"][0]["Next"] == "Migrate"
    assert every["Load"]["Next"] == "Publish" and every["Publish"]["Next"] == "TerminateClusterSuccess"
    assert every["TerminateClusterSuccess"]["Next"] == "Succeeded"
    # On failure the alert is formatted, the cluster torn down, then the alert sent; a failed teardown still alerts.
    assert every["Alert"]["Next"] == "TerminateClusterFailure"
    assert every["TerminateClusterFailure"]["Next"] == "NotifyFailure"
    assert every["TerminateClusterFailure"]["Catch"][0]["Next"] == "NotifyFailure"
    assert every["TerminateClusterSuccess"]["Catch"][0]["Next"] == "FailedStep"
    result = statelint(json.dumps(definition), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_quarantine_rate": 1.5}, "max_quarantine_rate must be between 0 and 1, got 1.5"),
        ({"sources": ()}, "sources must name at least one source"),
        ({"sources": ("orders", "orders")}, "sources must be unique, got ['orders', 'orders']"),
        ({"max_concurrency": 0}, "max_concurrency must be at least 1, got 0"),
    ],
)
def test_a_bad_spec_is_refused_with_its_reason(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        dataclasses.replace(SPEC, **change)
    assert str(caught.value) == message


def test_every_stage_needs_a_runner() -> None:
    with pytest.raises(ValueError, match="no runner for stage"):
        build({Stage.EXTRACT: lambdas()})


def test_corrections_run_on_the_runner_and_role_of_their_stage(tmp_path: Path) -> None:
    """A manual start's `retract` runs on the load stage's runner, `reprocess` on extract's (etl_jobs.access.RUNS_AS),
    each reading the start's input; then the run goes on."""
    definition = build(MIXED)
    every = states(definition)
    retract, reprocess = every["Retract"], every["Reprocess"]
    assert retract["Resource"] == every["Load"]["Resource"] == "arn:aws:states:::lambda:invoke"
    assert retract["Parameters"]["FunctionName"] == every["Load"]["Parameters"]["FunctionName"]
    assert retract["Parameters"]["Payload"]["retract"] == {"file.$": "$.input.retract.file"}
    assert reprocess["Resource"] == "arn:aws:states:::lambda:invoke"
    assert reprocess["Parameters"]["FunctionName"] == every["Extract"]["Parameters"]["FunctionName"]
    on_ecs = states(build(dict.fromkeys(Stage, ecs())))
    command = on_ecs["Retract"]["Parameters"]["Overrides"]["ContainerOverrides"][0]["Command.$"]
    assert command.startswith("States.Array('retract', '--run-date', $.run_date, '--file', $.input.retract.file")
    assert on_ecs["ReadRetractResult"]["Next"] == "AfterRetract" and on_ecs["AfterRetract"]["Default"] == "Sources"
    assert every["Retract"]["Catch"][0]["Next"] == "FailedRetract"
    result = statelint(json.dumps(definition), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
