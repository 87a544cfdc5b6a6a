"""Role statements generated from a storage-access declaration: objects per prefix, listing only under the declared
prefixes, the stack key usable only through S3, and nothing that was not declared."""

from __future__ import annotations

import dataclasses

import pytest

from components.lake_access import lake_arns, statements
from components.policies import wildcard_actions

KEY = "arn:aws:kms:eu-west-1:123456789012:key/k"
LAKE = lake_arns(
    {zone: f"arn:aws:s3:::lake-{zone}" for zone in ("raw", "staged", "curated", "quarantine", "artifacts")},
    key_arn=KEY,
    region="eu-west-1",
    results_prefix="results/",
)


@dataclasses.dataclass(frozen=True)
class Grant:
    zone: str
    prefix: str
    ops: frozenset[str]


def grant(zone: str, prefix: str, *ops: str) -> Grant:
    return Grant(zone, prefix, frozenset(ops))


def by_action(found: list[dict]) -> dict[str, dict]:  # type: ignore[type-arg]
    return {action: statement for statement in found for action in statement["Action"]}


def test_each_op_becomes_its_action_on_exactly_the_declared_prefix() -> None:
    found = by_action(
        statements(
            [
                grant("raw", "landing/", "read", "list", "delete"),
                grant("raw", "deliveries/", "write"),
                grant("curated", "order_date=", "read", "write", "delete"),
            ],
            LAKE,
        )
    )
    assert found["s3:GetObject"]["Resource"] == [
        "arn:aws:s3:::lake-curated/order_date=*",
        "arn:aws:s3:::lake-raw/landing/*",
    ]
    assert found["s3:PutObject"]["Resource"] == [
        "arn:aws:s3:::lake-curated/order_date=*",
        "arn:aws:s3:::lake-raw/deliveries/*",
    ]
    assert found["s3:AbortMultipartUpload"]["Resource"] == found["s3:PutObject"]["Resource"]
    assert found["s3:DeleteObject"]["Resource"] == [
        "arn:aws:s3:::lake-curated/order_date=*",
        "arn:aws:s3:::lake-raw/landing/*",
    ]
    listing = found["s3:ListBucket"]
    assert listing["Resource"] == ["arn:aws:s3:::lake-raw"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["landing/*"]}}


def test_the_key_is_usable_only_through_s3_and_only_as_the_grants_need() -> None:
    read_only = by_action(statements([grant("staged", "deliveries/", "read")], LAKE))
    assert read_only["kms:Decrypt"]["Resource"] == [KEY]
    assert read_only["kms:Decrypt"]["Condition"] == {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}
    assert "kms:GenerateDataKey" not in read_only
    writing = by_action(statements([grant("staged", "deliveries/", "write")], LAKE))
    assert writing["kms:GenerateDataKey"] is writing["kms:Decrypt"]
    assert "kms:Encrypt" not in writing and "kms:DescribeKey" not in writing
    assert not any(a.startswith("kms:") for a in by_action(statements([grant("raw", "x/", "list")], LAKE)))


def test_results_live_under_their_prefix_of_the_artifacts_bucket() -> None:
    found = by_action(statements([grant("results", "", "write")], LAKE))
    assert found["s3:PutObject"]["Resource"] == ["arn:aws:s3:::lake-artifacts/results/*"]


def test_listing_a_zone_from_its_root_needs_no_prefix_condition() -> None:
    found = by_action(statements([grant("staged", "", "list"), grant("staged", "deliveries/", "list")], LAKE))
    assert "Condition" not in found["s3:ListBucket"]


def test_nothing_is_wildcarded_and_the_output_is_stable() -> None:
    grants = [
        grant("raw", "a/", "read", "write"),
        grant("quarantine", "b/", "write", "list"),
        grant("raw", "c/", "list"),
    ]
    first, second = statements(grants, LAKE), statements(list(reversed(grants)), LAKE)
    assert first == second
    assert wildcard_actions({"Statement": first}) == []
    assert all(resource != "*" for s in first for resource in s["Resource"])


def test_an_unknown_zone_or_op_is_refused() -> None:
    with pytest.raises(ValueError, match="zone 'archive', which this deployment does not map to a bucket"):
        statements([grant("archive", "", "read")], LAKE)
    with pytest.raises(ValueError, match="unknown op 'copy'"):
        statements([grant("raw", "", "copy")], LAKE)
