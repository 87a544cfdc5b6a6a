"""Lambda's Kinesis event source mapping as AWS documents it, over a real stream on the moto server, for tests.

`EventSourceMapping(kinesis, stream, handler, ...)` reads each shard from its checkpoint with GetShardIterator and
GetRecords (moto's real implementation), builds the event Lambda would send (`kinesis_event`), invokes the handler
in process and applies what the Lambda documentation says about the outcome
(https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-batchfailurereporting.html, .../with-kinesis.html):
- an empty `batchItemFailures`: the batch succeeded, the checkpoint moves to its last record;
- `batchItemFailures` (ReportBatchItemFailures on): the checkpoint moves to the record before the lowest reported
  sequence number; with BisectBatchOnFunctionError on, "the batch is bisected at the returned sequence number and
  Lambda retries only the remaining records";
- a function error (an exception): with BisectBatchOnFunctionError on, the batch is split in two and each half
  retried, the first half first;
- a batch retried more than MaximumRetryAttempts times is given up: its shard and sequence range go to the
  on-failure destination (`given_up`) and the checkpoint moves past it.
One batch of a shard at a time (ParallelizationFactor 1), shards one after the other. What it does not model:
MaximumRecordAgeInSeconds (no clock), the batching window (a batch is what GetRecords returns, up to the batch
size), enhanced fan-out (moto has none) and concurrency across shards.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.support.handlers import LambdaContext

Handler = Callable[[dict[str, Any], Any], Any]


def kinesis_event(
    stream_arn: str, shard: str, records: Sequence[dict[str, Any]], region: str = "us-east-1"
) -> dict[str, Any]:
    """The event Lambda sends for `records` (GetRecords' records) of one shard."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": record["PartitionKey"],
                    "sequenceNumber": record["SequenceNumber"],
                    "data": base64.b64encode(record["Data"]).decode(),
                    "approximateArrivalTimestamp": record["ApproximateArrivalTimestamp"].timestamp(),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard}:{record['SequenceNumber']}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/consumer",
                "awsRegion": region,
                "eventSourceARN": stream_arn,
            }
            for record in records
        ]
    }


@dataclass
class EventSourceMapping:
    kinesis: Any
    stream: str
    handler: Handler
    batch_size: int = 100
    maximum_retry_attempts: int = 2
    bisect_on_error: bool = True
    report_batch_item_failures: bool = True
    checkpoints: dict[str, str] = field(default_factory=dict)
    given_up: list[dict[str, Any]] = field(default_factory=list)
    invocations: list[list[str]] = field(default_factory=list)
    """The sequence numbers of every invocation's batch, in order."""

    def __post_init__(self) -> None:
        self.arn = self.kinesis.describe_stream_summary(StreamName=self.stream)["StreamDescriptionSummary"]["StreamARN"]

    def shards(self) -> list[str]:
        return [shard["ShardId"] for shard in self.kinesis.list_shards(StreamName=self.stream)["Shards"]]

    def _read(self, shard: str) -> list[dict[str, Any]]:
        position: dict[str, Any] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": self.checkpoints[shard]}
            if shard in self.checkpoints
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        iterator = self.kinesis.get_shard_iterator(StreamName=self.stream, ShardId=shard, **position)["ShardIterator"]
        records: list[dict[str, Any]] = self.kinesis.get_records(ShardIterator=iterator, Limit=self.batch_size)[
            "Records"
        ]
        return records

    def poll(self) -> int:
        """Deliver every record written so far, shard by shard; the number of invocations made."""
        before = len(self.invocations)
        for shard in self.shards():
            while records := self._read(shard):
                self._deliver(shard, records, attempt=0)
                self.checkpoints[shard] = records[-1]["SequenceNumber"]
        return len(self.invocations) - before

    def redeliver(self, shard: str, records: Sequence[dict[str, Any]]) -> Any:
        """Invoke the handler again with a batch it already had (as after a timeout once it had finished)."""
        return self._invoke(shard, records)

    def _invoke(self, shard: str, records: Sequence[dict[str, Any]]) -> Any:
        self.invocations.append([r["SequenceNumber"] for r in records])
        return self.handler(kinesis_event(self.arn, shard, records), LambdaContext())

    def _deliver(self, shard: str, records: list[dict[str, Any]], attempt: int) -> None:
        try:
            response = self._invoke(shard, records)
        except Exception:
            remaining, split = records, self.bisect_on_error
        else:
            failures = (response or {}).get("batchItemFailures") or [] if self.report_batch_item_failures else []
            if not failures:
                return
            lowest = min(int(item["itemIdentifier"]) for item in failures)
            remaining = [r for r in records if int(r["SequenceNumber"]) >= lowest]
            split = False
        if attempt >= self.maximum_retry_attempts:
            self.given_up.append(
                {
                    "shard": shard,
                    "startSequenceNumber": remaining[0]["SequenceNumber"],
                    "endSequenceNumber": remaining[-1]["SequenceNumber"],
                    "batchSize": len(remaining),
                }
            )
            return
        if split and len(remaining) > 1:
            middle = len(remaining) // 2
            self._deliver(shard, remaining[:middle], attempt + 1)
            self._deliver(shard, remaining[middle:], attempt + 1)
        else:
            self._deliver(shard, remaining, attempt + 1)
