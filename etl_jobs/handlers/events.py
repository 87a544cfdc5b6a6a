"""The events the handlers accept, as Powertools parser (pydantic) models: a bad event is one clear error.

Extra fields are allowed (the orchestrator passes its whole state, e.g. earlier stages' results)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel, SqsRecordModel
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, Json, ValidationError, field_validator

from etl_jobs.ledger import check_source

DEFAULT_SOURCE = "orders"


class BadEventError(ValueError):
    """The event is not one this handler understands; retrying will not help."""


def _run_date(value: Any) -> Any:
    """`YYYY-MM-DD`, or the date part of an ISO timestamp such as the scheduler's `2024-01-01T02:00:00Z`."""
    if isinstance(value, str) and len(value) > 10 and value[10] in "T ":
        return value[:10]
    return value


def _sources(value: Any) -> Any:
    if isinstance(value, list):
        for name in value:
            if not isinstance(name, str):
                raise ValueError(f"sources must be names such as 'orders', got {name!r}")
            check_source(name)
    return value


class Correction(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Retract(Correction):
    file: str = Field(min_length=1)


class Reprocess(Correction):
    start: date = Field(validation_alias=AliasChoices("from", "start"))
    end: date = Field(validation_alias=AliasChoices("to", "end"))


class StageEvent(BaseModel):
    """What the orchestrator sends a stage: `{"run_date": "YYYY-MM-DD", "source": "orders"}` or
    `{"run_date": ..., "sources": ["orders", ...]}` (a manual start), plus optional settings and corrections."""

    model_config = ConfigDict(extra="allow")

    run_date: date
    source: str | None = None
    sources: list[str] | None = None
    input: str | None = None
    max_quarantine_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    retract: Retract | None = None
    reprocess: Reprocess | None = None

    _date = field_validator("run_date", mode="before")(_run_date)
    _many = field_validator("sources", mode="before")(_sources)

    @field_validator("source")
    @classmethod
    def _one(cls, value: str | None) -> str | None:
        return check_source(value) if value else None

    def names(self) -> list[str | None]:
        """The sources the event asks for; [None] means every source."""
        if self.source:
            return [self.source]
        return list(self.sources) if self.sources else [None]


class SweepEvent(BaseModel):
    """The serverless schedule's input (`{"source", "scheduled_time"}`) or a manual start
    (`{"run_date", "sources"}`)."""

    model_config = ConfigDict(extra="allow")

    source: str | None = None
    sources: list[str] | None = None
    run_date: date | None = None
    scheduled_time: datetime | None = None

    _many = field_validator("sources", mode="before")(_sources)
    _date = field_validator("run_date", mode="before")(_run_date)

    @field_validator("source")
    @classmethod
    def _one(cls, value: str | None) -> str | None:
        return check_source(value) if value else None

    def day(self) -> date:
        if self.run_date:
            return self.run_date
        return (self.scheduled_time or datetime.now(UTC)).date()

    def names(self) -> list[str]:
        if self.source:
            return [self.source]
        return list(self.sources) if self.sources else [DEFAULT_SOURCE]


class RunMessage(BaseModel):
    """One work-queue message: a run of a source (or of every source) for a date."""

    run_date: date
    source: str | None = None
    max_quarantine_rate: float | None = Field(default=None, ge=0.0, le=1.0)

    _date = field_validator("run_date", mode="before")(_run_date)


class RunRecord(SqsRecordModel):
    """An SQS record whose body is a `RunMessage` as JSON (the model BatchProcessor validates each record with)."""

    body: Json[RunMessage]  # type: ignore[assignment]


def _explain(error: ValidationError, what: str) -> BadEventError:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in item['loc']) or 'event'}: {item['msg']}" for item in error.errors()
    )
    return BadEventError(f"not a valid {what}: {problems}")


def _parse(event: Any, model: type[BaseModel], what: str) -> Any:
    try:
        return parse(event=event, model=model)
    except ValidationError as error:
        raise _explain(error, what) from error
    except Exception as error:  # Powertools may wrap the model's error
        if isinstance(error.__cause__, ValidationError):
            raise _explain(error.__cause__, what) from error
        raise BadEventError(f"not a valid {what}: {error}") from error


def stage_event(event: Any) -> StageEvent:
    result: StageEvent = _parse(event, StageEvent, 'stage event (e.g. {"run_date": "2024-05-01", "source": "orders"})')
    return result


def sweep_or_file_event(event: Any) -> SweepEvent | S3EventNotificationEventBridgeModel:
    """An S3 "Object Created" event from EventBridge, or a sweep (schedule or manual start)."""
    if isinstance(event, dict) and event.get("source") == "aws.s3":
        s3: S3EventNotificationEventBridgeModel = _parse(event, S3EventNotificationEventBridgeModel, "S3 event")
        return s3
    sweep: SweepEvent = _parse(event, SweepEvent, 'extract event (e.g. {"source": "orders", "scheduled_time": ...})')
    return sweep
