"""The platform's ETL state machines, built with `components.asl` (pure Python, no pulumi import).

What it provides:
- Invokers, one engine-neutral value per stage, so each stage's engine is chosen independently:
  `LambdaInvoker`, `EcsInvoker`, `GlueInvoker`, `EmrServerlessInvoker`, grouped in `PipelineStages`.
- `sequential_pipeline(...)`: extract -> transform -> validate -> quality gate -> load -> success notice (the ECS
  containers architecture, with `ecs:runTask.sync` stages).
- `orchestrated_pipeline(...)`: the stepfunctions architecture: extract every source in a Parallel state, transform
  each extract output with a Map, then validate -> quality gate -> load -> success notice.
Both return an `asl.StateMachine`; render it with `.to_json()` and give its role `.required_permissions()`.

Stage contract (what every stage receives and where its result goes):
- The execution input is `{"run_date": "YYYY-MM-DD", "source": "<name>", ...}` (`source` only for the sequential
  pipeline; the orchestrated one sets it per branch).
- A Lambda stage receives the whole state as its event: the input plus the results of earlier stages under their
  stage names, e.g. `{"run_date": ..., "source": ..., "extract": {"Payload": ...}}`. In the orchestrated pipeline a
  transform receives `{"run_date", "source", "extract": <that source's extract result>}`.
- A container / Glue / EMR stage receives arguments: `<stage> --run-date <run_date> [--source <source>]`
  (Glue: `--stage`, `--run-date`, `--source` job arguments).
- Each stage's result is stored at `$.<stage>` as `{"Payload": <result>}`, the shape of `lambda:invoke`: for Lambda the
  function's return value; for ECS `{"TaskArn", "LastStatus"}`; for Glue `{"JobRunId", "JobRunState"}`; for EMR
  `{"JobRunId"}`.
- The validate stage's result (`$.validate.Payload`) is at least `{"passed": bool, "quarantine_rate": float}`, what
  `etl_jobs` `validate()` returns. The quality gate fails the run when the result is missing either field, when
  `passed` is false, or when `quarantine_rate` is above the configured threshold.

Validation result of an ECS / Glue / EMR validate stage: `runTask.sync` (and the Glue/EMR `.sync` integrations) return
the job's description, not its output. So such a validate job gets one more argument, `--result-uri
s3://<bucket>/<prefix><execution name>.json`, writes its `validate()` result there as JSON, and the state that follows
(`ReadValidationResult`, an `aws-sdk:s3:getObject` Task) parses it into `$.validate.Payload`. The gate then works the
same for every engine, and the threshold stays in the state machine config rather than in the job. The key is the
execution name, which is unique, so re-runs of a date never read a stale result. Exiting non-zero on a failed
validation was rejected: `runTask.sync` does not fail on a container's exit code, and the quarantine rate would not
reach the alert.

Failures: every Task retries (asl defaults) and catches `States.ALL` into `NotifyFailure`, which publishes the state
(with the error at `$.error`) to the alerts topic and then fails the execution (`Failed`). A failed gate goes to
`NotifyFailure` the same way, with `$.error = {"Error": "QualityGateFailed", "Cause": <validate result>}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from components import asl

STAGES = ("extract", "transform", "validate", "load")


@dataclass(frozen=True)
class LambdaInvoker:
    """Run the stage as a Lambda function (synchronous invoke)."""

    function_arn: str


@dataclass(frozen=True)
class EcsInvoker:
    """Run the stage as a Fargate task and wait for it to stop."""

    cluster_arn: str
    task_definition_arn: str
    container_name: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    pass_role_arns: tuple[str, ...]
    """The task role and the execution role: Step Functions passes both to ECS."""
    capacity_provider: str | None = None
    """e.g. "FARGATE_SPOT"; None runs with the FARGATE launch type."""


@dataclass(frozen=True)
class GlueInvoker:
    """Run the stage as a Glue job run and wait for it."""

    job_arn: str


@dataclass(frozen=True)
class EmrServerlessInvoker:
    """Run the stage as a Spark job on an EMR Serverless application and wait for it."""

    application_arn: str
    execution_role_arn: str
    entry_point: str
    """s3:// URI of the job script."""


Invoker = LambdaInvoker | EcsInvoker | GlueInvoker | EmrServerlessInvoker


@dataclass(frozen=True)
class PipelineStages:
    """The engine of each stage, e.g. extract on Lambda and transform on ECS."""

    extract: Invoker
    transform: Invoker
    validate: Invoker
    load: Invoker


@dataclass(frozen=True)
class ValidationResultLocation:
    """Where a non-Lambda validate stage writes its result (see the module docstring). `kms_key_arn` is the bucket's
    SSE-KMS key, which reading the object needs."""

    bucket: str
    prefix: str = "validation/"
    partition: str = "aws"
    kms_key_arn: str | None = None

    def uri_expression(self) -> str:
        return f"States.Format('s3://{self.bucket}/{self.prefix}{{}}.json', $$.Execution.Name)"

    def key_expression(self) -> str:
        return f"States.Format('{self.prefix}{{}}.json', $$.Execution.Name)"


def _stage_task(
    stage: str,
    invoker: Invoker,
    *,
    name: str,
    with_source: bool,
    result_uri: str | None = None,
    payload: dict[str, Any] | None = None,
    retry: tuple[asl.Retry, ...] | None = None,
    **options: Any,
) -> asl.Task:
    """One stage as a Task, whatever its engine; the result goes where `options` say (result_path). `retry` None keeps
    the engine's default retriers."""
    options["retry"] = retry
    arguments = [f"'{stage}'", "'--run-date'", "$.run_date"]
    if with_source:
        arguments += ["'--source'", "$.source"]
    if result_uri is not None:
        arguments += ["'--result-uri'", result_uri]
    argument_list = f"States.Array({', '.join(arguments)})"
    if isinstance(invoker, LambdaInvoker):
        return asl.lambda_invoke(name, invoker.function_arn, payload=payload, **options)
    if isinstance(invoker, EcsInvoker):
        return asl.ecs_run_task(
            name,
            cluster_arn=invoker.cluster_arn,
            task_definition_arn=invoker.task_definition_arn,
            container_name=invoker.container_name,
            subnet_ids=invoker.subnet_ids,
            security_group_ids=invoker.security_group_ids,
            pass_role_arns=invoker.pass_role_arns,
            capacity_provider=invoker.capacity_provider,
            command_path=argument_list,
            result_selector={"Payload": {"TaskArn.$": "$.TaskArn", "LastStatus.$": "$.LastStatus"}},
            **options,
        )
    if isinstance(invoker, GlueInvoker):
        glue_arguments: dict[str, Any] = {"--stage": stage, "--run-date.$": "$.run_date"}
        if with_source:
            glue_arguments["--source.$"] = "$.source"
        if result_uri is not None:
            glue_arguments["--result-uri.$"] = result_uri
        return asl.glue_start_job_run(
            name,
            job_arn=invoker.job_arn,
            arguments=glue_arguments,
            result_selector={"Payload": {"JobRunId.$": "$.Id", "JobRunState.$": "$.JobRunState"}},
            **options,
        )
    return asl.emr_serverless_start_job_run(
        name,
        application_arn=invoker.application_arn,
        execution_role_arn=invoker.execution_role_arn,
        entry_point=invoker.entry_point,
        entry_point_arguments_path=argument_list,
        result_selector={"Payload": {"JobRunId.$": "$.JobRunId"}},
        **options,
    )


def _check_threshold(max_quarantine_rate: float) -> None:
    if not 0.0 <= max_quarantine_rate <= 1.0:
        raise ValueError(f"max_quarantine_rate must be between 0 and 1, got {max_quarantine_rate}")


def _validate_states(
    stages: PipelineStages,
    validation_result: ValidationResultLocation | None,
    *,
    with_source: bool,
    next_state: str,
    stage_retry: tuple[asl.Retry, ...] | None,
) -> list[asl.Task]:
    """The validate stage, plus the S3 read of its result when its engine returns no payload."""
    if isinstance(stages.validate, LambdaInvoker):
        return [
            _stage_task(
                "validate",
                stages.validate,
                retry=stage_retry,
                name="Validate",
                with_source=with_source,
                result_path="$.validate",
                next=next_state,
            )
        ]
    if validation_result is None:
        raise ValueError(
            "validation_result is required when the validate stage does not run on Lambda: "
            f"{type(stages.validate).__name__} returns no payload, so its result is read from S3"
        )
    return [
        _stage_task(
            "validate",
            stages.validate,
            retry=stage_retry,
            name="Validate",
            with_source=with_source,
            result_uri=validation_result.uri_expression(),
            result_path="$.validate_job",
            next="ReadValidationResult",
        ),
        asl.s3_get_object(
            "ReadValidationResult",
            validation_result.bucket,
            key_path=validation_result.key_expression(),
            key_prefix=validation_result.prefix,
            partition=validation_result.partition,
            kms_key_arn=validation_result.kms_key_arn,
            result_selector={"Payload.$": "States.StringToJson($.Body)"},
            result_path="$.validate",
            next=next_state,
        ),
    ]


def _gate_and_tail(
    stages: PipelineStages,
    alerts_topic_arn: str,
    max_quarantine_rate: float,
    pipeline_name: str,
    *,
    with_source: bool,
    stage_retry: tuple[asl.Retry, ...] | None,
) -> list[Any]:
    """QualityGate -> Load -> NotifySuccess -> Succeeded, and the failure path NotifyFailure -> Failed."""
    passed = "$.validate.Payload.passed"
    rate = "$.validate.Payload.quarantine_rate"
    return [
        asl.Choice(
            name="QualityGate",
            comment=f"Load only a validated batch with a quarantine rate of at most {max_quarantine_rate}",
            # Rules are tried in order, so the comparisons only see a result that has both fields.
            choices=(
                asl.ChoiceRule(
                    asl.Or(asl.Not(asl.IsPresent(passed)), asl.Not(asl.IsPresent(rate))), "QualityGateFailed"
                ),
                asl.ChoiceRule(asl.Not(asl.BooleanEquals(passed, True)), "QualityGateFailed"),
                asl.ChoiceRule(asl.NumericGreaterThan(rate, max_quarantine_rate), "QualityGateFailed"),
            ),
            default="Load",
        ),
        _stage_task(
            "load",
            stages.load,
            retry=stage_retry,
            name="Load",
            with_source=with_source,
            result_path="$.load",
            next="NotifySuccess",
        ),
        asl.sns_publish(
            "NotifySuccess",
            alerts_topic_arn,
            message_path="States.JsonToString($)",
            subject=f"{pipeline_name} succeeded"[:100],
            result_path="$.notification",
            next="Succeeded",
        ),
        asl.Succeed(name="Succeeded"),
        asl.Pass(
            name="QualityGateFailed",
            parameters={"Error": "QualityGateFailed", "Cause.$": "States.JsonToString($.validate)"},
            result_path="$.error",
            next="NotifyFailure",
        ),
        asl.sns_publish(
            "NotifyFailure",
            alerts_topic_arn,
            message_path="States.JsonToString($)",
            subject=f"{pipeline_name} failed"[:100],
            result_path="$.notification",
            # The alert path cannot alert about itself: if publishing fails, fail the execution directly.
            catch=(asl.Catch("Failed", result_path="$.notification_error"),),
            next="Failed",
        ),
        asl.Fail(name="Failed", error="PipelineFailed", cause="A stage or the quality gate failed; see the alert"),
    ]


def sequential_pipeline(
    stages: PipelineStages,
    alerts_topic_arn: str,
    *,
    max_quarantine_rate: float = 0.05,
    validation_result: ValidationResultLocation | None = None,
    pipeline_name: str = "ETL pipeline",
    timeout_seconds: int = 6 * 3600,
    defaults: asl.TaskDefaults | None = None,
    stage_retry: tuple[asl.Retry, ...] | None = None,
) -> asl.StateMachine:
    """Extract -> Transform -> Validate [-> ReadValidationResult] -> QualityGate -> Load -> NotifySuccess; any failure
    -> NotifyFailure -> Failed. `validation_result` is required when the validate stage is not a Lambda.
    `defaults` overrides the Task defaults (its `catch_next` is always the alert path); `stage_retry` replaces the
    engines' default retriers of the four stages."""
    _check_threshold(max_quarantine_rate)
    states: list[Any] = [
        _stage_task(
            "extract",
            stages.extract,
            retry=stage_retry,
            name="Extract",
            with_source=True,
            result_path="$.extract",
            next="Transform",
        ),
        _stage_task(
            "transform",
            stages.transform,
            retry=stage_retry,
            name="Transform",
            with_source=True,
            result_path="$.transform",
            next="Validate",
        ),
        *_validate_states(
            stages, validation_result, with_source=True, next_state="QualityGate", stage_retry=stage_retry
        ),
        *_gate_and_tail(
            stages, alerts_topic_arn, max_quarantine_rate, pipeline_name, with_source=True, stage_retry=stage_retry
        ),
    ]
    return asl.StateMachine(
        tuple(states),
        comment=f"{pipeline_name}: extract, transform, validate, gate on quarantine rate, load",
        timeout_seconds=timeout_seconds,
        defaults=_alerting(defaults),
    )


def orchestrated_pipeline(
    sources: Sequence[str],
    stages: PipelineStages,
    alerts_topic_arn: str,
    *,
    max_quarantine_rate: float = 0.05,
    max_concurrency: int = 4,
    validation_result: ValidationResultLocation | None = None,
    pipeline_name: str = "ETL pipeline",
    timeout_seconds: int = 6 * 3600,
    defaults: asl.TaskDefaults | None = None,
    stage_retry: tuple[asl.Retry, ...] | None = None,
) -> asl.StateMachine:
    """ExtractSources (Parallel, one branch per source) -> TransformPartitions (Map over the extract outputs, at most
    `max_concurrency` at once) -> Validate -> QualityGate -> Load -> NotifySuccess; any failure -> NotifyFailure ->
    Failed. The execution input needs only `run_date`."""
    _check_threshold(max_quarantine_rate)
    if not sources:
        raise ValueError("sources must name at least one source")
    if len(set(sources)) != len(sources):
        raise ValueError(f"sources must be unique, got {list(sources)}")
    branches = tuple(
        asl.Branch(
            (
                # Each branch tags its output with the source, so the Map knows which partition it transforms.
                asl.Pass(
                    name=f"Source {source}",
                    parameters={"run_date.$": "$.run_date", "source": source},
                    next=f"Extract {source}",
                ),
                _stage_task(
                    "extract",
                    stages.extract,
                    retry=stage_retry,
                    name=f"Extract {source}",
                    with_source=True,
                    result_path="$.extract",
                    end=True,
                ),
            )
        )
        for source in sources
    )
    transform = _stage_task(
        "transform",
        stages.transform,
        retry=stage_retry,
        name="Transform partition",
        with_source=True,
        result_path="$.transform",
        end=True,
    )
    states: list[Any] = [
        asl.Parallel(
            name="ExtractSources",
            branches=branches,
            result_path="$.extract",
            next="TransformPartitions",
        ),
        asl.Map(
            name="TransformPartitions",
            items_path="$.extract",
            item_selector={
                "run_date.$": "$$.Map.Item.Value.run_date",
                "source.$": "$$.Map.Item.Value.source",
                "extract.$": "$$.Map.Item.Value.extract",
            },
            item_processor=asl.Branch((transform,)),
            max_concurrency=max_concurrency,
            result_path="$.transform",
            next="Validate",
        ),
        *_validate_states(
            stages, validation_result, with_source=False, next_state="QualityGate", stage_retry=stage_retry
        ),
        *_gate_and_tail(
            stages, alerts_topic_arn, max_quarantine_rate, pipeline_name, with_source=False, stage_retry=stage_retry
        ),
    ]
    return asl.StateMachine(
        tuple(states),
        comment=f"{pipeline_name}: parallel extract of {len(sources)} sources, per-partition transform, gated load",
        timeout_seconds=timeout_seconds,
        defaults=_alerting(defaults),
    )


def _alerting(defaults: asl.TaskDefaults | None) -> asl.TaskDefaults:
    base = defaults or asl.TaskDefaults()
    return asl.TaskDefaults(
        retry=base.retry,
        catch_next="NotifyFailure",
        catch_result_path=base.catch_result_path,
        timeout_seconds=base.timeout_seconds,
    )
