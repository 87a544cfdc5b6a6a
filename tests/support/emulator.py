"""Moto's Step Functions engine as a test double: a server configured to execute state machines, with clients for it,
one execute-and-wait helper and the states an execution entered."""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

import boto3

from tests.support.moto_server import REGION, MotoServer

MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


@dataclass
class Emulator:
    """A moto server configured to execute state machines, with clients for it."""

    server: MotoServer

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.server.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def queue_lambda_results(self, *results: str) -> None:
        """What the next invocations of any function return, in order (moto's "lambda simple" backend)."""
        request = urllib.request.Request(
            f"{self.server.endpoint}/moto-api/static/lambda-simple/response",
            data=json.dumps({"results": list(results), "region": REGION}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30):
            pass

    def execute(
        self, machine_arn: str, run: dict[str, Any], *, timeout_s: float = 45
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Start an execution, wait for it to end, and return its description and its history events."""
        sfn = self.client("stepfunctions")
        execution_arn = sfn.start_execution(stateMachineArn=machine_arn, input=json.dumps(run))["executionArn"]
        deadline = time.monotonic() + timeout_s
        while (description := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline, f"execution did not finish within {timeout_s} s"
            time.sleep(0.1)
        return description, sfn.get_execution_history(executionArn=execution_arn)["events"]

    def role(self, name: str) -> str:
        arn: str = self.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        return arn

    def functions(self, arns: list[str], role: str) -> None:
        """Create stub functions under the names the ARNs give (moto's "lambda simple" backend answers for them)."""
        lam = self.client("lambda")
        for arn in sorted(set(arns)):
            name = arn.split(":function:", 1)[1]
            created = lam.create_function(
                FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.handler", Code={"ZipFile": b"stub"}
            )["FunctionArn"]
            assert created == arn, "moto's ARN differs from the definition's: the account or region does not match"

    def alerts_topic(self, name: str) -> tuple[str, str]:
        """An SNS topic with an SQS subscriber: (topic ARN, queue URL)."""
        sns, sqs = self.client("sns"), self.client("sqs")
        topic_arn: str = sns.create_topic(Name=name)["TopicArn"]
        queue_url: str = sqs.create_queue(QueueName=f"{name}-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        return topic_arn, queue_url

    def alerts(self, queue_url: str) -> list[tuple[str | None, str]]:
        """(subject, message) of every notification the subscriber queue received."""
        sqs = self.client("sqs")
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        envelopes = [json.loads(message["Body"]) for message in messages]
        return [(envelope.get("Subject"), envelope["Message"]) for envelope in envelopes]


def entered(events: list[dict[str, Any]]) -> list[str]:
    """The states an execution entered, in order."""
    return [event["stateEnteredEventDetails"]["name"] for event in events if "stateEnteredEventDetails" in event]


def scheduled_payloads(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `Payload` of every lambda:invoke the execution scheduled, in order."""
    found = []
    for event in events:
        details = event.get("taskScheduledEventDetails")
        if details and details["resourceType"] == "lambda":
            found.append(json.loads(details["parameters"])["Payload"])
    return found


def task_events(events: list[dict[str, Any]], state: str) -> list[dict[str, Any]]:
    """The events of one Task state, from its entry to its exit (nothing else may interleave)."""
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
