"""The ETL pipeline every orchestrator runs, as a Step Functions definition (pure Python: no pulumi import).

`pipeline_definition(spec, runners, ...)` builds it from a `PipelineSpec` and one `BoundRunner` per stage (a stage
runner with its ARNs resolved; each runner module defines its own). Shape:

    CheckSources -> CheckRunDate -> RunDateFrom(Input|StartTime) -> CheckDate      input checks (below)
    -> runners' setup steps -> before-stage steps of extract and transform
    -> Sources: Map over `sources` (at most `max_concurrency` at once; each iteration gets the run date, its
       source and what the runners carry in, such as a cluster id: `PipelineHooks.carried()`):
           CheckSource -> Extract [-> ReadExtractResult] -> Transform [-> ReadTransformResult]
    -> after-stage steps of extract and transform
    -> Validate [-> ReadValidateResult] -> QualityGate -> Load [-> ReadLoadResult] (with their before/after steps)
    -> runners' teardown steps -> Succeeded
    any failure -> Failed<Stage> (names the stage) -> Alert (a short summary) -> teardown -> NotifyFailure -> Failed

**Input.** One documented shape for scheduled and manual starts, checked before use so that bad input reaches the
alert path with a message instead of dying in a path expression (`States.Runtime`, which no Catch sees):

    {"run_date": "YYYY-MM-DD", "sources": ["orders"]}

`run_date` may also be an ISO timestamp (the scheduler sends `<aws.scheduler.scheduled-time>`; its date part counts)
and defaults to the execution's start date; `sources` defaults to every configured source and may name only those.

**Stages.** Each stage gets the run date, its source (extract and transform run per source) and, for validate, the
gate's threshold, so the job records `passed` exactly as the gate judges it. A runner that returns a payload (Lambda)
returns the stage's result; a runner that does not (a container, a Spark job) writes it as JSON to a result object
named after the execution (`ResultStore`), which the next state reads. Either way the result sits at
`$.<stage>.Payload`, so the gate, the alerts and every later stage see one shape whatever runs a stage.

**Failures.** Every Task retries as its runner's `StageBudget` says and catches `States.ALL`. One failed run sends one
alert: `Failed<Stage>` records the stage, `Alert` formats a summary (pipeline, run date, stage, error name, the
execution and where its logs are; counts for a failed gate), never the execution state itself, which may hold
confidential values. The execution timeout is derived from the stages' budgets (`execution_timeout`).
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

from components import asl
from components.stages import Stage, StageBudget
from etl_jobs.pipeline import LANDING_WAIT_METRIC

# Reading a result object is one small S3 call: a short timeout, the default retriers.
RESULT_READ_BUDGET = StageBudget(timeout_seconds=60, retry=asl.TaskDefaults().retry)
# Publishing the alert: one small SNS call, retried twice.
NOTIFY_BUDGET = StageBudget(
    timeout_seconds=30, retry=(asl.Retry((asl.TASK_FAILED, asl.TIMEOUT), interval_seconds=1, max_attempts=2),)
)
# The Pass and Choice states (input checks, gate, summaries) take milliseconds; this is room to spare.
OVERHEAD_SECONDS = 30
# The namespace of the platform's own metrics (the Lambda handlers' Powertools metrics and the pipelines'); a run
# publishes LANDING_WAIT_METRIC, how long the oldest file still in landing has waited (alarmed by the orchestration).
METRICS_NAMESPACE = "EtlPlatform"
FAILURE_STATE = "Alert"
FAILED_STEP = "FailedStep"
NOTIFY_FAILURE = "NotifyFailure"
EXPRESS_MAX_SECONDS = 300
INVALID_INPUT = "InvalidInput"
_DATE_OF = "States.ArrayGetItem(States.StringSplit({}, 'T'), 0)"
R = TypeVar("R")


# ---------------------------------------------------------------------------------------------------------------------
# How a stage is called, and what runs it
# ---------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Correction:
    """A deliberate correction a manual start asks for, run by the runner (and role) of one stage
    (`etl_jobs.access.RUNS_AS`): its command line and its Lambda event both read the start's input."""

    name: str
    """The job command and the key of the manual input, e.g. `retract`."""
    stage: Stage
    options: tuple[tuple[str, str], ...]
    """(command-line flag, JSONPath into the state), e.g. `("--file", "$.input.retract.file")`."""
    event: dict[str, Any]
    """What the Lambda stage handler reads, as a payload template, e.g. `{"retract": {"file.$": ...}}`."""


# The corrections a manual start may carry (issue: retract a delivery, reprocess a date range).
RETRACT = Correction(
    "retract", Stage.LOAD, (("--file", "$.input.retract.file"),), {"retract": {"file.$": "$.input.retract.file"}}
)
REPROCESS = Correction(
    "reprocess",
    Stage.EXTRACT,
    (("--from", "$.input.reprocess.from"), ("--to", "$.input.reprocess.to")),
    {"reprocess": {"from.$": "$.input.reprocess.from", "to.$": "$.input.reprocess.to"}},
)
CORRECTIONS = (RETRACT, REPROCESS)


@dataclasses.dataclass(frozen=True)
class StageCall:
    """One stage call, whatever runs it: the arguments every runner passes to the job in its own form."""

    stage: Stage
    per_source: bool
    """The call runs once per source (inside the Sources Map), so it passes `$.source`."""
    max_quarantine_rate: float | None = None
    """The gate's threshold, passed to validate so the job's `passed` agrees with the gate."""
    result_uri: str | None = None
    """Intrinsic giving the result object's URI, for runners that return no payload."""
    correction: Correction | None = None
    """A correction this call runs instead of the stage's own command (on the stage's runner and role)."""

    @property
    def name(self) -> str:
        return self.correction.name if self.correction else self.stage.value

    def arguments(self) -> list[str]:
        """The command line as ASL intrinsic arguments: `'validate', '--run-date', $.run_date, ...`."""
        arguments = [f"'{self.name}'", "'--run-date'", "$.run_date"]
        if self.per_source:
            arguments += ["'--source'", "$.source"]
        for flag, path in self.correction.options if self.correction else ():
            arguments += [f"'{flag}'", path]
        if self.max_quarantine_rate is not None:
            arguments += ["'--max-quarantine-rate'", f"'{self.max_quarantine_rate}'"]
        if self.result_uri is not None:
            arguments += ["'--result-uri'", self.result_uri]
        return arguments

    def command(self) -> str:
        """`States.Array(...)` of `arguments()`: the container command or job arguments of the call."""
        return f"States.Array({', '.join(self.arguments())})"

    def event(self) -> dict[str, Any]:
        """The event a Lambda stage handler receives (a payload template)."""
        event: dict[str, Any] = {"stage": self.stage.value, "run_date.$": "$.run_date"}
        if self.per_source:
            event["source.$"] = "$.source"
        if self.max_quarantine_rate is not None:
            event["max_quarantine_rate"] = self.max_quarantine_rate
        if self.correction:
            event.update(self.correction.event)
        return event


class PipelineHooks:
    """Steps an architecture adds around the stages. Every hook returns states (empty by default) whose last state
    goes to `next_state`; names must be unique in the machine, so prefix them with the architecture's name."""

    def setup_states(self, next_state: str) -> tuple[asl.State, ...]:
        """Once per run, before the first stage (e.g. create a transient cluster)."""
        return ()

    def teardown_states(self, label: str, next_state: str, on_error: str) -> tuple[asl.State, ...]:
        """Once per run after the last stage, on success (`label` "Success") and on failure ("Failure"); Tasks must
        catch into `on_error`. Also reached when setup did not finish, so it must tolerate that."""
        return ()

    def before(self, stage: Stage, next_state: str) -> tuple[asl.State, ...]:
        """Before a stage (e.g. schema migrations); for extract and transform, before the Sources Map."""
        return ()

    def after(self, stage: Stage, next_state: str) -> tuple[asl.State, ...]:
        """After a stage (e.g. a warehouse load); for extract and transform, after the Sources Map."""
        return ()

    def hook_seconds(self) -> int:
        """The worst-case time of this architecture's extra steps, added to the execution timeout."""
        return 0

    def carried(self) -> Mapping[str, str]:
        """What the per-source stages need from the run's state besides the run date and the source (a transient
        cluster's id, say), as ItemSelector entries: `{"emr_cluster.$": "$.emr_cluster"}`. Each iteration of the
        Sources Map sees only these. Keys must not clash with another runner's."""
        return {}


class RunnerTraits(Protocol):
    """What the pipeline's shape and timeout depend on, known before any ARN is (a runner, bound or not)."""

    architecture: str
    """The registry name of the architecture that runs the stages."""
    returns_payload: ClassVar[bool]
    """The Task's result is the stage's result (`{"Payload": ...}`); otherwise the job writes a result object."""
    waits_for_jobs: ClassVar[bool]
    """Its Tasks are `.sync` integrations (only STANDARD state machines run them)."""

    def budget(self, stage: Stage) -> StageBudget:
        """Timeout and retriers of the stage's Task."""
        ...

    def hook_seconds(self) -> int: ...


class BoundRunner(PipelineHooks, abc.ABC):
    """A stage runner with its ARNs resolved: turns a `StageCall` into a Task. Runner modules subclass it as a
    frozen dataclass of plain values."""

    architecture: str
    returns_payload: ClassVar[bool]
    waits_for_jobs: ClassVar[bool] = False
    budgets: Mapping[Stage, StageBudget]

    def budget(self, stage: Stage) -> StageBudget:
        return self.budgets[stage]

    @abc.abstractmethod
    def task(self, call: StageCall, *, name: str, **options: Any) -> asl.Task:
        """The stage as a Task named `name`; `options` are Task fields (next, end, result_path, catch)."""


@dataclasses.dataclass(frozen=True)
class ResultStore:
    """Where runners without a payload write stage results: `s3://<bucket>/<prefix><execution>/<stage>[-<source>]`."""

    bucket: str
    prefix: str = "results/"
    partition: str = "aws"
    kms_key_arn: str | None = None

    def key(self, call: StageCall) -> str:
        if call.per_source:
            return f"States.Format('{self.prefix}{{}}/{call.name}-{{}}.json', $$.Execution.Name, $.source)"
        return f"States.Format('{self.prefix}{{}}/{call.name}.json', $$.Execution.Name)"

    def uri(self, call: StageCall) -> str:
        return self.key(call).replace("States.Format('", f"States.Format('s3://{self.bucket}/", 1)

    def read(self, call: StageCall, *, name: str, **options: Any) -> asl.Task:
        return asl.s3_get_object(
            name,
            self.bucket,
            key_path=self.key(call),
            key_prefix=self.prefix,
            partition=self.partition,
            kms_key_arn=self.kms_key_arn,
            result_selector={"Payload.$": "States.StringToJson($.Body)"},
            result_path=f"$.{call.name}",
            timeout_seconds=RESULT_READ_BUDGET.timeout_seconds,
            retry=RESULT_READ_BUDGET.retry,
            **options,
        )


# ---------------------------------------------------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PipelineSpec:
    """What a pipeline is built from, besides its runners."""

    name: str
    """Shown in alerts, e.g. `etl-platform-prod-stepfunctions`."""
    sources: tuple[str, ...]
    """Configured sources: the default of the input's `sources`, and the only names it may hold."""
    max_quarantine_rate: float
    max_concurrency: int = 4
    """Sources extracted and transformed at once."""
    log_group: str = ""
    """Where the execution logs are, named in alerts."""
    region: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_quarantine_rate <= 1.0:
            raise ValueError(f"max_quarantine_rate must be between 0 and 1, got {self.max_quarantine_rate}")
        if not self.sources:
            raise ValueError("sources must name at least one source")
        if len(set(self.sources)) != len(self.sources):
            raise ValueError(f"sources must be unique, got {list(self.sources)}")
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {self.max_concurrency}")


def execution_timeout(spec: PipelineSpec, runners: Mapping[Stage, RunnerTraits], extra_seconds: int = 0) -> int:
    """The longest a run can take: each stage's worst case (every attempt timing out), the per-source stages once per
    round of the Sources Map, the corrections a manual start may ask for, the result reads, the runners' extra steps,
    `extra_seconds` (steps of the stack's own, such as the warehouse load) and a fixed overhead."""

    def stage(s: Stage) -> int:
        read = 0 if runners[s].returns_payload else RESULT_READ_BUDGET.worst_case_seconds()
        return runners[s].budget(s).worst_case_seconds() + read

    rounds = math.ceil(len(spec.sources) / spec.max_concurrency)
    hooks = sum(hook.hook_seconds() for hook in _hooks(runners))
    per_source = rounds * (stage(Stage.EXTRACT) + stage(Stage.TRANSFORM))
    corrections = sum(stage(correction.stage) for correction in CORRECTIONS)
    alert = 2 * NOTIFY_BUDGET.worst_case_seconds()  # the landing metric and the alert
    fixed = alert + OVERHEAD_SECONDS + extra_seconds
    return per_source + stage(Stage.VALIDATE) + stage(Stage.LOAD) + corrections + hooks + fixed


def _chain(states: Sequence[asl.State], fallback: str) -> str:
    """The first state of a hook's states, or `fallback` when there are none."""
    return states[0].name if states else fallback


def _hooks(runners: Mapping[Stage, R]) -> list[R]:
    """Each runner once, in stage order."""
    seen: dict[int, R] = {}
    for stage in Stage:
        seen.setdefault(id(runners[stage]), runners[stage])
    return list(seen.values())


class _Builder:
    def __init__(
        self,
        spec: PipelineSpec,
        runners: Mapping[Stage, BoundRunner],
        results: ResultStore,
        steps: Sequence[PipelineHooks] = (),
    ) -> None:
        missing = [stage.value for stage in Stage if stage not in runners]
        if missing:
            raise ValueError(f"no runner for stage(s) {', '.join(missing)}")
        self.spec, self.runners, self.results = spec, runners, results
        # The runners' hooks first, then the stack's own steps (which run after the runners' after-steps).
        self.hooks: list[PipelineHooks] = [*_hooks(runners), *steps]

    def call(self, stage: Stage, per_source: bool, correction: Correction | None = None) -> StageCall:
        rate = self.spec.max_quarantine_rate if stage is Stage.VALIDATE and correction is None else None
        call = StageCall(stage, per_source=per_source, max_quarantine_rate=rate, correction=correction)
        if not self.runners[stage].returns_payload:
            call = dataclasses.replace(call, result_uri=self.results.uri(call))
        return call

    def stage_states(
        self,
        stage: Stage,
        *,
        per_source: bool,
        next_state: str | None,
        name: str,
        correction: Correction | None = None,
    ) -> list[asl.State]:
        """The stage's Task (or a correction on the stage's runner), and the read of its result object when its runner
        returns no payload. Inside the Map (`per_source`) the states end the iteration when `next_state` is None;
        failures propagate to the Map."""
        runner, call = self.runners[stage], self.call(stage, per_source, correction)
        budget = runner.budget(stage)
        read_name = f"Read{name}Result"
        catch = None if per_source else (asl.Catch(f"Failed{name}"),)
        flow: dict[str, Any] = {"next": next_state} if next_state else {"end": True}
        task_options: dict[str, Any] = {
            "timeout_seconds": budget.timeout_seconds,
            "retry": budget.retry,
            "catch": catch,
        }
        if runner.returns_payload:
            return [runner.task(call, name=name, result_path=f"$.{call.name}", **task_options, **flow)]
        return [
            runner.task(call, name=name, result_path=f"$.{call.name}_job", next=read_name, **task_options),
            self.results.read(call, name=read_name, catch=catch, **flow),
        ]

    def around(self, stage: Stage, first: str, *, before: bool) -> list[asl.State]:
        """Every architecture's before- or after-steps of `stage`, chained, ending at `first`."""
        states: list[asl.State] = []
        target = first
        for hook in reversed(self.hooks):
            steps = hook.before(stage, target) if before else hook.after(stage, target)
            states = [*steps, *states]
            target = _chain(steps, target)
        return states

    def teardown(self, label: str, next_state: str, on_error: str) -> list[asl.State]:
        states: list[asl.State] = []
        target = next_state
        for hook in self.hooks:
            steps = hook.teardown_states(label, target, on_error)
            states = [*steps, *states]
            target = _chain(steps, target)
        return states

    def item_selector(self) -> dict[str, str]:
        """Each Sources iteration's input: the run date, the source, and what the runners carry into it."""
        selector = {"run_date.$": "$.run_date", "source.$": "$$.Map.Item.Value"}
        for hook in self.hooks:
            for key, path in hook.carried().items():
                if key in selector:
                    owner = getattr(hook, "architecture", type(hook).__name__)
                    raise ValueError(f"{owner} carries {key!r} into the Sources Map, which is taken")
                selector[key] = path
        return selector

    def setup(self, next_state: str) -> list[asl.State]:
        states: list[asl.State] = []
        target = next_state
        for hook in reversed(self.hooks):
            steps = hook.setup_states(target)
            states = [*steps, *states]
            target = _chain(steps, target)
        return states


def _input_checks(spec: PipelineSpec, first: str, refused: str = NOTIFY_FAILURE) -> list[asl.State]:
    """The input checks; a refused input (or an unknown source found in the Map) goes to `refused` with its message:
    the failure teardown, so a run refused after its setup still ends what the setup made."""

    def invalid(name: str, cause: str) -> asl.Pass:
        return asl.Pass(
            name=name,
            parameters={"Error": "InvalidInput", "Cause": cause},
            result_path="$.error",
            next=INVALID_INPUT,
        )

    allowed = ", ".join(spec.sources)
    return [
        asl.Choice(
            name="CheckSources",
            comment='Input: {"run_date": "YYYY-MM-DD", "sources": [...]}, both optional',
            choices=(
                asl.ChoiceRule(asl.Not(asl.IsPresent("$.sources")), "DefaultSources"),
                # Present but not a non-empty list: a string or object has no element 0.
                asl.ChoiceRule(asl.Not(asl.IsPresent("$.sources[0]")), "InvalidSources"),
            ),
            default="CheckRunDate",
        ),
        asl.Pass(name="DefaultSources", result=list(spec.sources), result_path="$.sources", next="CheckRunDate"),
        asl.Choice(
            name="CheckRunDate",
            choices=(
                asl.ChoiceRule(asl.Not(asl.IsPresent("$.run_date")), "RunDateFromStartTime"),
                asl.ChoiceRule(asl.Not(asl.IsString("$.run_date")), "InvalidRunDate"),
            ),
            default="RunDateFromInput",
        ),
        asl.Pass(
            name="RunDateFromInput",
            parameters={"run_date.$": _DATE_OF.format("$.run_date"), "sources.$": "$.sources", "input.$": "$"},
            next="CheckDate",
        ),
        asl.Pass(
            name="RunDateFromStartTime",
            parameters={
                "run_date.$": _DATE_OF.format("$$.Execution.StartTime"),
                "sources.$": "$.sources",
                "input.$": "$",
            },
            next="CheckDate",
        ),
        asl.Pass(
            name="CheckDate",
            parameters={"midnight.$": "States.Format('{}T00:00:00Z', $.run_date)"},
            result_path="$.date_check",
            next="IsDate",
        ),
        asl.Choice(
            name="IsDate",
            choices=(asl.ChoiceRule(asl.IsTimestamp("$.date_check.midnight"), first),),
            default="InvalidRunDate",
        ),
        invalid("InvalidSources", f"sources must be a non-empty list of configured sources ({allowed})"),
        invalid("InvalidRunDate", "run_date must be a date YYYY-MM-DD (or an ISO timestamp, whose date counts)"),
        asl.Pass(
            name=INVALID_INPUT,
            parameters={
                "subject": f"{spec.name}: run refused"[:100],
                "message.$": f"States.Format('{spec.name} refused the input of execution {{}}: {{}}', "
                "$$.Execution.Name, $.error.Cause)",
            },
            result_path="$.alert",
            next=refused,
        ),
    ]


def _correction_states(builder: _Builder, next_state: str) -> list[asl.State]:
    """`Corrections` routes a manual start that asks for one: each checks its input, runs on the runner (and role) of
    the stage it belongs to, then the run goes on to `next_state` (a retraction leaves the rest of the run to do; a
    reprocess needs it, to stage the deliveries again)."""

    def invalid(name: str, cause: str) -> asl.Pass:
        return asl.Pass(
            name=name, parameters={"Error": "InvalidInput", "Cause": cause}, result_path="$.error", next=INVALID_INPUT
        )

    reprocess = builder.stage_states(
        REPROCESS.stage, per_source=False, next_state=next_state, name="Reprocess", correction=REPROCESS
    )
    wants_reprocess = asl.ChoiceRule(asl.IsPresent("$.input.reprocess"), "CheckReprocess")
    after_retract = asl.Choice(name="AfterRetract", choices=(wants_reprocess,), default=next_state)
    retract = builder.stage_states(
        RETRACT.stage, per_source=False, next_state=after_retract.name, name="Retract", correction=RETRACT
    )
    dates = ("$.reprocess_check.from", "$.reprocess_check.to")
    return [
        asl.Choice(
            name="Corrections",
            comment='A manual start may add {"retract": {"file": KEY}} or {"reprocess": {"from": D, "to": D}}',
            choices=(asl.ChoiceRule(asl.IsPresent("$.input.retract"), "CheckRetract"), wants_reprocess),
            default=next_state,
        ),
        asl.Choice(
            name="CheckRetract",
            choices=(asl.ChoiceRule(asl.IsString("$.input.retract.file"), retract[0].name),),
            default="InvalidRetract",
        ),
        *retract,
        after_retract,
        asl.Choice(
            name="CheckReprocess",
            choices=(
                asl.ChoiceRule(
                    asl.And(asl.IsString("$.input.reprocess.from"), asl.IsString("$.input.reprocess.to")),
                    "ReprocessDates",
                ),
            ),
            default="InvalidReprocess",
        ),
        asl.Pass(
            name="ReprocessDates",
            parameters={
                "from.$": "States.Format('{}T00:00:00Z', $.input.reprocess.from)",
                "to.$": "States.Format('{}T00:00:00Z', $.input.reprocess.to)",
            },
            result_path="$.reprocess_check",
            next="AreReprocessDates",
        ),
        asl.Choice(
            name="AreReprocessDates",
            choices=(asl.ChoiceRule(asl.And(*(asl.IsTimestamp(d) for d in dates)), reprocess[0].name),),
            default="InvalidReprocess",
        ),
        *reprocess,
        invalid("InvalidRetract", "retract.file must be the key of a delivered file, e.g. landing/orders/x.csv"),
        invalid("InvalidReprocess", "reprocess.from and reprocess.to must be dates YYYY-MM-DD"),
    ]


def _where(spec: PipelineSpec) -> str:
    console = (
        f"https://{spec.region}.console.aws.amazon.com/states/home?region={spec.region}#/v2/executions/details/{{}}"
        if spec.region
        else "{}"
    )
    return f"Execution: {console}. Logs: {spec.log_group or 'the state machine log group'}."


def _failure_states(spec: PipelineSpec, next_state: str, *, with_steps: bool) -> list[asl.State]:
    """`Failed<Stage>` (records the stage), `Alert` (the summary), the gate's own summaries; all go to `next_state`.
    `FailedStep` (a runner's extra step failed) only when there are such steps."""
    failed = {
        "FailedSources": "extract or transform",
        "FailedValidate": "validate",
        "FailedLoad": "load",
        "FailedRetract": "retract",
        "FailedReprocess": "reprocess",
    }
    if with_steps:
        failed[FAILED_STEP] = "a setup, teardown or hook step"
    states: list[asl.State] = [
        asl.Pass(name=name, result=label, result_path="$.failed_stage", next=FAILURE_STATE)
        for name, label in failed.items()
    ]
    where = _where(spec).replace("'", "")

    def summary(name: str, subject: str, text: str, *paths: str) -> asl.Pass:
        arguments = ", ".join([*paths, "$$.Execution.Id"])
        return asl.Pass(
            name=name,
            parameters={
                "subject": f"{spec.name}: {subject}"[:100],
                "message.$": f"States.Format('{spec.name}: {text}. {where}', {arguments})",
            },
            result_path="$.alert",
            next=next_state,
        )

    gate = f"quarantine rate {{}} above {spec.max_quarantine_rate}, {{}} of {{}} rows quarantined"
    return [
        *states,
        summary(
            FAILURE_STATE, "run failed", "run {} failed at {} with {}", "$.run_date", "$.failed_stage", "$.error.Error"
        ),
        summary(
            "QualityGateFailed",
            "quality gate failed",
            f"run {{}} stopped at the quality gate ({gate}); nothing was published",
            "$.run_date",
            "$.validate.Payload.quarantine_rate",
            "$.validate.Payload.rows_quarantined",
            "$.validate.Payload.rows_in",
        ),
        summary(
            "ValidationResultIncomplete",
            "quality gate failed",
            "run {} stopped at the quality gate: the validate result lacks passed or quarantine_rate; nothing was "
            "published",
            "$.run_date",
        ),
    ]


def _reaches_failed_step(states: Sequence[asl.State]) -> bool:
    """Whether any of a runner's extra steps goes to `FailedStep`: by name, or by the machine's default Catch (a
    Task, Parallel or Map that names no Catch of its own)."""
    named = any(target == FAILED_STEP for state in states for _, target in state.transitions())
    return named or any(isinstance(s, asl.Task | asl.Parallel | asl.Map) and s.catch is None for s in states)


def _allowed_source(sources: Sequence[str]) -> asl.Condition:
    tests = [asl.StringEquals("$.source", source) for source in sources]
    return asl.And(asl.IsString("$.source"), tests[0] if len(tests) == 1 else asl.Or(*tests))


def pipeline_definition(
    spec: PipelineSpec,
    runners: Mapping[Stage, BoundRunner],
    *,
    alerts_topic_arn: str,
    results: ResultStore,
    extra_steps: Sequence[PipelineHooks] = (),
) -> asl.StateMachine:
    """The pipeline for resolved runners (see the module docstring); `results` is where runners without a payload
    write stage results; `extra_steps` are hooks of the stack's own, beside the runners' (the warehouse load). Raises
    ValueError when a stage has no runner."""
    builder = _Builder(spec, runners, results, extra_steps)

    failure_path = builder.teardown("Failure", NOTIFY_FAILURE, NOTIFY_FAILURE)
    success_path = builder.teardown("Success", "Succeeded", FAILED_STEP)

    # Built back to front, so each part knows where it goes next.
    load_after = builder.around(Stage.LOAD, _chain(success_path, "Succeeded"), before=False)
    load = builder.stage_states(
        Stage.LOAD, per_source=False, next_state=_chain(load_after, _chain(success_path, "Succeeded")), name="Load"
    )
    load_before = builder.around(Stage.LOAD, load[0].name, before=True)
    passed, rate = "$.validate.Payload.passed", "$.validate.Payload.quarantine_rate"
    gate = asl.Choice(
        name="QualityGate",
        comment=f"Load only a validated batch with a quarantine rate of at most {spec.max_quarantine_rate}",
        # Rules are tried in order, so the comparisons only see a result that has both fields.
        choices=(
            asl.ChoiceRule(
                asl.Or(asl.Not(asl.IsPresent(passed)), asl.Not(asl.IsPresent(rate))), "ValidationResultIncomplete"
            ),
            asl.ChoiceRule(asl.Not(asl.BooleanEquals(passed, True)), "QualityGateFailed"),
            asl.ChoiceRule(asl.NumericGreaterThan(rate, spec.max_quarantine_rate), "QualityGateFailed"),
        ),
        default=_chain(load_before, load[0].name),
    )
    validate_after = builder.around(Stage.VALIDATE, gate.name, before=False)
    validate = builder.stage_states(
        Stage.VALIDATE, per_source=False, next_state=_chain(validate_after, gate.name), name="Validate"
    )
    validate_before = builder.around(Stage.VALIDATE, validate[0].name, before=True)
    validate_entry = _chain(validate_before, validate[0].name)

    transform_after = builder.around(Stage.TRANSFORM, validate_entry, before=False)
    extract_after = builder.around(Stage.EXTRACT, _chain(transform_after, validate_entry), before=False)
    transform = builder.stage_states(Stage.TRANSFORM, per_source=True, next_state=None, name="Transform")
    extract = builder.stage_states(Stage.EXTRACT, per_source=True, next_state=transform[0].name, name="Extract")
    sources = asl.Map(
        name="Sources",
        comment="Extract and transform each source; a failed iteration fails the Map",
        items_path="$.sources",
        item_selector=builder.item_selector(),
        item_processor=asl.Branch(
            (
                asl.Choice(
                    name="CheckSource",
                    choices=(asl.ChoiceRule(_allowed_source(spec.sources), extract[0].name),),
                    default="UnknownSource",
                ),
                asl.Fail(
                    name="UnknownSource",
                    error="InvalidInput",
                    cause=f"sources may only name configured sources ({', '.join(spec.sources)})",
                ),
                *extract,
                *transform,
            )
        ),
        max_concurrency=spec.max_concurrency,
        result_path="$.per_source",
        catch=(asl.Catch("SourcesFailed"),),
        next="ReportLanding",
    )
    report_landing = asl.cloudwatch_put_metric(
        "ReportLanding",
        namespace=METRICS_NAMESPACE,
        metric_name=LANDING_WAIT_METRIC,
        value_path="$.per_source[0].extract.Payload.oldest_waiting_s",
        dimensions={"Pipeline": spec.name},
        result_path="$.landing_metric",
        timeout_seconds=NOTIFY_BUDGET.timeout_seconds,
        retry=NOTIFY_BUDGET.retry,
        # A metric that could not be published must not fail the run; the alarm then sees no data.
        catch=(
            asl.Catch(_chain(extract_after, _chain(transform_after, validate_entry)), result_path="$.metric_error"),
        ),
        next=_chain(extract_after, _chain(transform_after, validate_entry)),
    )
    sources_failed = asl.Choice(
        name="SourcesFailed",
        comment="An unknown source is bad input (its own message); anything else failed a stage",
        choices=(asl.ChoiceRule(asl.StringEquals("$.error.Error", "InvalidInput"), INVALID_INPUT),),
        default="FailedSources",
    )
    transform_before = builder.around(Stage.TRANSFORM, sources.name, before=True)
    extract_before = builder.around(Stage.EXTRACT, _chain(transform_before, sources.name), before=True)
    first_stage = _chain(extract_before, _chain(transform_before, sources.name))
    corrections = _correction_states(builder, first_stage)
    setup = builder.setup(corrections[0].name)

    steps = [*setup, *extract_before, *transform_before, *extract_after, *transform_after, *validate_before]
    steps += [*validate_after, *load_before, *load_after, *success_path, *failure_path]
    states: list[asl.State] = [
        *_input_checks(spec, _chain(setup, corrections[0].name), _chain(failure_path, NOTIFY_FAILURE)),
        *setup,
        *corrections,
        *extract_before,
        *transform_before,
        sources,
        report_landing,
        sources_failed,
        *extract_after,
        *transform_after,
        *validate_before,
        *validate,
        *validate_after,
        gate,
        *load_before,
        *load,
        *load_after,
        *success_path,
        asl.Succeed(name="Succeeded"),
        *_failure_states(spec, _chain(failure_path, NOTIFY_FAILURE), with_steps=_reaches_failed_step(steps)),
        *failure_path,
        asl.sns_publish(
            NOTIFY_FAILURE,
            alerts_topic_arn,
            message_path="$.alert.message",
            subject_path="$.alert.subject",
            result_path="$.notification",
            timeout_seconds=NOTIFY_BUDGET.timeout_seconds,
            retry=NOTIFY_BUDGET.retry,
            # The alert path cannot alert about itself: if publishing fails, fail the execution directly.
            catch=(asl.Catch("Failed", result_path="$.notification_error"),),
            next="Failed",
        ),
        asl.Fail(
            name="Failed", error="PipelineFailed", cause="A stage, the quality gate or the input failed; see the alert"
        ),
    ]
    return asl.StateMachine(
        tuple(states),
        comment=f"{spec.name}: extract and transform per source, validate, gate, load",
        timeout_seconds=execution_timeout(spec, runners, sum(step.hook_seconds() for step in extra_steps)),
        # Tasks without their own Catch (runners' extra steps) report as a failed step.
        defaults=asl.TaskDefaults(catch_next=FAILED_STEP),
    )


def express_problems(spec: PipelineSpec, runners: Mapping[Stage, RunnerTraits], extra_seconds: int = 0) -> list[str]:
    """Why an EXPRESS state machine cannot run this pipeline (empty when it can); `extra_seconds` as in
    `execution_timeout`."""
    problems = []
    waiting = [f"{stage.value} on {runners[stage].architecture}" for stage in Stage if runners[stage].waits_for_jobs]
    if waiting:
        problems.append(
            f"an EXPRESS state machine cannot wait for a job ({', '.join(waiting)}): `.sync` integrations need STANDARD"
        )
    timeout = execution_timeout(spec, runners, extra_seconds)
    if timeout > EXPRESS_MAX_SECONDS:
        budgets = ", ".join(
            f"{stage.value} {runners[stage].budget(stage).worst_case_seconds()} s on {runners[stage].architecture}"
            for stage in Stage
        )
        problems.append(
            f"a run may take up to {timeout} s (worst cases with retries: {budgets}), above the "
            f"{EXPRESS_MAX_SECONDS} s an EXPRESS execution may last: use STANDARD"
        )
    return problems
