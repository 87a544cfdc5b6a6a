"""The events the handlers accept, read through Powertools' typed data classes, with each field checked once here:
a bad event is one `BadEventError` naming the field and what is expected.

(Powertools' pydantic parser models would do the checking too, but pydantic is not part of the job runtime: the image
and the Lambda layer install only the engine's closure.)
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent, S3EventBridgeNotificationEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from etl_jobs.ledger import SourceNameError, check_source
from etl_jobs.streams import Batch, StreamError, StreamRecord

DEFAULT_SOURCE = "orders"


class BadEventError(ValueError):
    """The event is not one this handler understands; retrying will not help."""


def _object(event: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(event, Mapping):
        raise BadEventError(f"{what} must be a JSON object, got {type(event).__name__}: {event!r:.80}")
    return event


def _date(value: Any, field: str) -> date:
    """`YYYY-MM-DD`, or the date part of an ISO timestamp such as the scheduler's `2024-01-01T02:00:00Z`."""
    if not isinstance(value, str):
        raise BadEventError(f"{field}: expected a date 'YYYY-MM-DD', got {value!r}")
    text = value[:10] if len(value) > 10 and value[10] in "T " else value
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise BadEventError(f"{field}: expected a date 'YYYY-MM-DD', got {value!r}") from None


def _source(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise BadEventError(f"{field}: expected a source name such as 'orders', got {value!r}")
    try:
        return check_source(value)
    except SourceNameError as error:
        raise BadEventError(f"{field}: {error}") from None


def _sources(event: Mapping[str, Any]) -> tuple[str | None, list[str] | None]:
    source = _source(event["source"], "source") if event.get("source") is not None else None
    sources = event.get("sources")
    if sources is None:
        return source, None
    if not isinstance(sources, list) or not sources:
        raise BadEventError(f"sources: expected a non-empty list of source names such as ['orders'], got {sources!r}")
    return source, [_source(name, f"sources[{i}]") for i, name in enumerate(sources)]


def _rate(event: Mapping[str, Any]) -> float | None:
    value = event.get("max_quarantine_rate")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise BadEventError(f"max_quarantine_rate: expected a number between 0 and 1, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Retract:
    file: str


@dataclass(frozen=True)
class Reprocess:
    start: date
    end: date


@dataclass(frozen=True)
class StageEvent:
    """What the orchestrator sends a stage: `{"run_date": "YYYY-MM-DD", "source": "orders"}` or a manual start's
    `{"run_date": ..., "sources": ["orders", ...]}`, with optional `input`, `max_quarantine_rate` and the corrections
    `retract: {"file": KEY}` / `reprocess: {"from": D, "to": D}`. Other fields (earlier stages' results) are ignored."""

    run_date: date
    source: str | None = None
    sources: list[str] | None = None
    input: str | None = None
    max_quarantine_rate: float | None = None
    retract: Retract | None = None
    reprocess: Reprocess | None = None

    def names(self) -> list[str | None]:
        """The sources the event asks for; [None] means every source."""
        if self.source:
            return [self.source]
        return list(self.sources) if self.sources else [None]


def stage_event(event: Any) -> StageEvent:
    body = _object(event, 'a stage event (e.g. {"run_date": "2024-05-01", "source": "orders"})')
    if "run_date" not in body:
        raise BadEventError('run_date: missing; a stage event is e.g. {"run_date": "2024-05-01", "source": "orders"}')
    source, sources = _sources(body)
    given = body.get("input")
    if given is not None and (not isinstance(given, str) or not given):
        raise BadEventError(f"input: expected the URI of a file, got {given!r}")
    retract = None
    if body.get("retract") is not None:
        correction = _object(body["retract"], "retract")
        file = correction.get("file")
        if not isinstance(file, str) or not file.strip():
            raise BadEventError(f"retract.file: expected the key of a delivered file, got {file!r}")
        retract = Retract(file)
    reprocess = None
    if body.get("reprocess") is not None:
        correction = _object(body["reprocess"], "reprocess")
        reprocess = Reprocess(
            _date(correction.get("from"), "reprocess.from"), _date(correction.get("to"), "reprocess.to")
        )
    return StageEvent(
        run_date=_date(body["run_date"], "run_date"),
        source=source,
        sources=sources,
        input=given,
        max_quarantine_rate=_rate(body),
        retract=retract,
        reprocess=reprocess,
    )


@dataclass(frozen=True)
class SweepEvent:
    """The serverless schedule's input (`{"source", "scheduled_time"}`) or a manual start
    (`{"run_date", "sources"}`)."""

    day: date
    sources: list[str]


def _sweep(event: Mapping[str, Any]) -> SweepEvent:
    source, sources = _sources(event)
    if event.get("run_date") is not None:
        day = _date(event["run_date"], "run_date")
    elif event.get("scheduled_time") is not None:
        value = event["scheduled_time"]
        try:
            day = datetime.fromisoformat(str(value).replace("Z", "+00:00")).date()
        except ValueError:
            raise BadEventError(f"scheduled_time: expected an ISO timestamp, got {value!r}") from None
    else:
        day = datetime.now(UTC).date()
    return SweepEvent(day, [source] if source else sources or [DEFAULT_SOURCE])


def sweep_or_file_event(event: Any) -> SweepEvent | S3EventBridgeNotificationEvent:
    """An S3 "Object Created" event from EventBridge (typed), or a sweep (schedule or manual start)."""
    body = _object(event, "an extract event")
    if body.get("source") != "aws.s3":
        return _sweep(body)
    s3 = S3EventBridgeNotificationEvent(dict(body))
    try:
        s3.detail.bucket.name, s3.detail.object.key, s3.time  # noqa: B018 - read once to check the shape
    except (KeyError, TypeError) as error:
        raise BadEventError(
            f"an S3 'Object Created' event without detail.bucket.name/detail.object.key: {error}"
        ) from None
    return s3


@dataclass(frozen=True)
class RunMessage:
    """One work-queue message: a run of a source (or of every source) for a date."""

    run_date: date
    source: str | None = None
    max_quarantine_rate: float | None = None


def run_message(record: SQSRecord) -> RunMessage:
    """The record's body as a RunMessage (`{"run_date", "source"?, "max_quarantine_rate"?}`)."""
    try:
        body = json.loads(record.body)
    except json.JSONDecodeError as error:
        raise BadEventError(f"message {record.message_id}: the body is not JSON ({error})") from None
    message = _object(body, f"message {record.message_id}")
    if "run_date" not in message:
        raise BadEventError(f"message {record.message_id}: run_date: missing")
    source, _ = _sources({"source": message.get("source")})
    return RunMessage(_date(message["run_date"], "run_date"), source, _rate(message))


def stream_batch(event: Any) -> Batch:
    """A Kinesis event (Powertools' typed `KinesisStreamEvent`) as one shard's `streams.Batch`. The shard comes from
    each record's `eventID` (`shardId-...:<sequence number>`), the stream from its `eventSourceArn`; an event source
    mapping never mixes shards in one batch, so a batch that does is refused."""
    body = _object(event, "a Kinesis event")
    if not isinstance(body.get("Records"), list):
        raise BadEventError("Records: a Kinesis event carries a list of Records")
    kinesis = KinesisStreamEvent(dict(body))
    records, shards, streams = [], set(), set()
    for index, record in enumerate(kinesis.records):
        try:
            shard, _, sequence = record.event_id.partition(":")
            payload = record.kinesis
            records.append(
                StreamRecord(
                    sequence=payload.sequence_number,
                    data=payload.data_as_bytes(),
                    partition_key=payload.partition_key,
                    arrival=float(payload.approximate_arrival_timestamp),
                )
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as error:
            raise BadEventError(f"Records[{index}]: not a Kinesis record ({type(error).__name__}: {error})") from None
        shards.add(shard)
        streams.add(record.event_source_arn.rsplit("/", 1)[-1])
        if sequence != payload.sequence_number:
            raise BadEventError(f"Records[{index}]: eventID {record.event_id!r} does not end in its sequence number")
    if len(shards) > 1 or len(streams) > 1:
        raise BadEventError(f"a batch holds one shard of one stream, got shards {sorted(shards)} of {sorted(streams)}")
    if not records:
        raise BadEventError("Records: empty; an event source mapping never invokes with no records")
    try:
        return Batch(stream=streams.pop(), shard=shards.pop(), records=tuple(records))
    except StreamError as error:
        raise BadEventError(str(error)) from None
