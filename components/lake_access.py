"""IAM statements for what a command of the job code touches in the lake, generated from its own declaration.

`role_statements(stage, foundation)` is what every stage role on every runner is made of: the grants
`etl_jobs.access.role_grants(stage)` declares (the stage's own and those of the corrections it runs) as statements on
the foundation's zones.

`etl_jobs.access` declares, per command, which zone prefixes it reads, lists, writes and deletes; every stage role on
every runner is made from that declaration here, so a role cannot drift from the code it runs. Plain functions over
resolved ARNs (no pulumi import), like `components.policies`:

- `statements(grants, lake)`: S3 statements for the grants (objects under each prefix; `s3:ListBucket` on the bucket
  with an `s3:prefix` condition) and the stack key, which S3 may use on the role's behalf only (`kms:ViaService`):
  Decrypt to read, GenerateDataKey and Decrypt to write (multipart uploads need both).
- `LakeArns`: where each zone lives once deployed. The zones are bucket roots; `results` (where runners without a
  payload write stage results) is a prefix of the artifacts bucket.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Protocol

import pulumi

from components import policies
from components.refs import FoundationRefs
from etl_jobs import access as declared

# Where runners without a payload write stage results: this prefix of the artifacts bucket (the `results` zone).
RESULTS_PREFIX = "results/"

ACTIONS = {
    "read": ("s3:GetObject",),
    "write": ("s3:PutObject", "s3:AbortMultipartUpload"),
    "delete": ("s3:DeleteObject",),
}


class GrantLike(Protocol):
    """`etl_jobs.access.Grant`: the zone and op values are string enums."""

    @property
    def zone(self) -> str: ...

    @property
    def prefix(self) -> str: ...

    @property
    def ops(self) -> frozenset[str]: ...


@dataclasses.dataclass(frozen=True)
class LakeArns:
    """Resolved locations of the zones and the key encrypting them."""

    buckets: Mapping[str, str]
    """Zone -> bucket ARN (`results` -> the artifacts bucket)."""
    roots: Mapping[str, str]
    """Zone -> key prefix of the zone inside its bucket ("" for a bucket of its own)."""
    key_arn: str
    region: str

    def location(self, zone: str, prefix: str) -> tuple[str, str]:
        if zone not in self.buckets:
            raise ValueError(f"the declaration names zone {zone!r}, which this deployment does not map to a bucket")
        return self.buckets[zone], self.roots.get(zone, "") + prefix


def statements(grants: Iterable[GrantLike], lake: LakeArns) -> list[policies.Statement]:
    """Least-privilege statements for `grants`, merged per action and sorted, so the policy is stable."""
    objects: dict[str, set[str]] = {}
    lists: dict[str, set[str]] = {}
    for grant in grants:
        bucket, prefix = lake.location(str(grant.zone), grant.prefix)
        for op in sorted(str(op) for op in grant.ops):
            if op == "list":
                lists.setdefault(bucket, set()).add(prefix)
            elif op in ACTIONS:
                for action in ACTIONS[op]:
                    objects.setdefault(action, set()).add(f"{bucket}/{prefix}*")
            else:
                raise ValueError(f"unknown op {op!r} in a grant on {grant.zone}/{grant.prefix}")
    found: list[policies.Statement] = []
    for action in sorted(objects):
        found.append(policies.allow([action], sorted(objects[action]), sid=_sid(action)))
    for index, bucket in enumerate(sorted(lists)):
        prefixes = sorted(lists[bucket])
        # Listing the whole bucket (a zone at its root) needs no condition; otherwise only the declared prefixes.
        scope = {} if "" in prefixes else {"Condition": {"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}}}
        found.append(policies.allow(["s3:ListBucket"], [bucket], sid=f"List{index}", **scope))
    key_actions = set()
    if "s3:GetObject" in objects:
        key_actions.add("kms:Decrypt")
    if "s3:PutObject" in objects:
        key_actions.update({"kms:GenerateDataKey", "kms:Decrypt"})
    if key_actions:
        found.append(
            policies.allow(
                sorted(key_actions),
                [lake.key_arn],
                sid="LakeKeyThroughS3",
                Condition={"StringEquals": {"kms:ViaService": f"s3.{lake.region}.amazonaws.com"}},
            )
        )
    return found


def _sid(action: str) -> str:
    return action.replace("s3:", "").replace(":", "")


def lake_arns(buckets: Mapping[str, str], *, key_arn: str, region: str, results_prefix: str) -> LakeArns:
    """The zones of the foundation's lake: one bucket each, results under `results_prefix` of the artifacts bucket."""
    zones = {zone: buckets[zone] for zone in ("raw", "staged", "curated", "quarantine")}
    return LakeArns(
        buckets={**zones, "results": buckets["artifacts"]},
        roots={"results": results_prefix},
        key_arn=key_arn,
        region=region,
    )


def role_statements(
    stage: str,
    foundation: FoundationRefs,
    *,
    landing_prefix: str = "landing/",
    writes_results: bool = True,
    as_stage: str | None = None,
) -> pulumi.Output[list[policies.Statement]]:
    """The statements of the role that runs `stage` (a stage, or a command such as the serverless `process`): its
    declared grants on this stack's zones. A runner that returns its result as a payload writes no result object
    (`writes_results=False`); `as_stage`: the pipeline stage a command runs as (`etl_jobs.access.role_grants`)."""
    grants = [
        grant
        for grant in declared.role_grants(stage, landing_prefix=landing_prefix, as_stage=as_stage)
        if writes_results or grant.zone is not declared.Zone.RESULTS
    ]
    lake = foundation.lake
    zones = {
        "raw": lake.raw.arn,
        "staged": lake.staged.arn,
        "curated": lake.curated.arn,
        "quarantine": lake.quarantine.arn,
        "artifacts": lake.artifacts.arn,
    }
    region = foundation.stack.region

    def build(values: dict[str, str]) -> list[policies.Statement]:
        key = values.pop("key")
        return statements(grants, lake_arns(values, key_arn=key, region=region, results_prefix=RESULTS_PREFIX))

    return pulumi.Output.all(**zones, key=foundation.key.arn).apply(build)
