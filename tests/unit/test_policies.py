"""The policy functions, without Pulumi: scoped to the ARNs they are given, no wildcard actions."""

from __future__ import annotations

import json

import pytest

from components import policies

ACCOUNT = "123456789012"
BUCKET = "arn:aws:s3:::acme-raw"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:alerts"
QUEUE = "arn:aws:sqs:eu-west-1:123456789012:work"


def test_allow_refuses_wildcard_actions() -> None:
    with pytest.raises(ValueError, match=r"wildcard action 's3:\*' is not allowed"):
        policies.allow(["s3:*"], [BUCKET])
    with pytest.raises(ValueError, match="wildcard action 's3:Get\\*'"):
        policies.allow(["s3:Get*"], [BUCKET])


def test_allow_refuses_star_resources_for_scopable_actions() -> None:
    with pytest.raises(ValueError, match=r"actions \['s3:GetObject'\] can be scoped to an ARN"):
        policies.allow(["s3:GetObject", "xray:PutTraceSegments"], "*")
    statement = policies.allow(["xray:PutTraceSegments"], "*")
    assert statement == {"Effect": "Allow", "Action": ["xray:PutTraceSegments"], "Resource": ["*"]}


def test_every_star_exception_is_justified() -> None:
    for action, reason in policies.ACTIONS_REQUIRING_STAR.items():
        assert ":" in action and "*" not in action and len(reason) > 10


def test_bucket_policy_denies_insecure_transport_on_the_bucket_and_its_objects() -> None:
    (statement,) = policies.bucket_policy(BUCKET)["Statement"]
    assert statement["Effect"] == "Deny" and statement["Resource"] == [BUCKET, f"{BUCKET}/*"]
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_access_log_bucket_admits_the_logging_service_for_our_buckets_only() -> None:
    document = policies.access_log_bucket_policy("arn:aws:s3:::logs", ACCOUNT, [BUCKET])
    allow = next(s for s in document["Statement"] if s["Effect"] == "Allow")
    assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert allow["Resource"] == "arn:aws:s3:::logs/*"
    assert allow["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT
    assert allow["Condition"]["ArnLike"]["aws:SourceArn"] == [BUCKET]


def test_key_policy_has_no_unconditioned_service_or_public_principal() -> None:
    document = policies.key_policy(ACCOUNT, "aws", "eu-west-1")
    admin = document["Statement"][0]
    assert admin["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    for statement in document["Statement"][1:]:
        assert "Service" in statement["Principal"] and statement["Condition"]
    logs = document["Statement"][1]
    assert logs["Principal"]["Service"] == "logs.eu-west-1.amazonaws.com"
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"].startswith(
        f"arn:aws:logs:eu-west-1:{ACCOUNT}:"
    )


def test_topic_policy_is_tls_only_and_scoped_to_this_account() -> None:
    deny, services, owner = policies.topic_policy(TOPIC, ACCOUNT)["Statement"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "sns:Publish"
    assert services["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    assert owner["Principal"] == {"AWS": ACCOUNT} and owner["Resource"] == TOPIC


def test_queue_policy_allows_each_sender_only_from_its_source() -> None:
    rule = "arn:aws:events:eu-west-1:123456789012:rule/drops"
    deny, send = policies.queue_policy(QUEUE, ACCOUNT, senders=[("events.amazonaws.com", rule)])["Statement"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert send["Principal"] == {"Service": "events.amazonaws.com"} and send["Action"] == "sqs:SendMessage"
    assert send["Condition"]["ArnLike"]["aws:SourceArn"] == rule


def test_assume_role_names_one_service_and_the_account() -> None:
    (statement,) = policies.assume_role("lambda.amazonaws.com", ACCOUNT)["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    (scoped,) = policies.assume_role("vpc-flow-logs.amazonaws.com", ACCOUNT, ["arn:x"])["Statement"]
    assert scoped["Condition"]["ArnLike"] == {"aws:SourceArn": ["arn:x"]}


def test_wildcard_actions_finds_only_allowed_wildcards() -> None:
    document = policies.document(
        {"Effect": "Allow", "Action": ["s3:Get*", "sqs:SendMessage"], "Resource": ["*"]},
        {"Effect": "Deny", "Action": "s3:*", "Resource": ["*"]},
    )
    assert policies.wildcard_actions(document) == ["s3:Get*"]
    assert policies.wildcard_actions(policies.document(policies.flow_log_policy("arn:g"))) == []


def test_eventbridge_key_use_is_scoped_by_encryption_context_not_source_account() -> None:
    # EventBridge's KMS calls carry no aws:SourceAccount: such a condition would drop every delivery silently.
    document = policies.key_policy(ACCOUNT, "aws", "eu-west-1")
    events = [s for s in document["Statement"] if s["Principal"] == {"Service": "events.amazonaws.com"}]
    contexts = sorted(next(iter(s["Condition"]["ArnLike"])) for s in events)
    assert contexts == ["kms:EncryptionContext:aws:sns:topicArn", "kms:EncryptionContext:aws:sqs:arn"]
    for statement in events:
        assert "aws:SourceAccount" not in json.dumps(statement)
        assert next(iter(statement["Condition"]["ArnLike"].values())).endswith(f":eu-west-1:{ACCOUNT}:*")
    others = [s for s in document["Statement"] if "Service" in s["Principal"] and s not in events]
    assert all("events.amazonaws.com" not in s["Principal"]["Service"] for s in others)
