"""Run job code under exactly a set of IAM policies, on a moto server that enforces IAM.

What it gives:
- `enforcing_moto()`: a moto server whose `reset()` also sets its INITIAL_NO_AUTH_ACTION_COUNT to 3 (moto's
  `/moto-api/reset-auth`). After each reset the first three requests create an admin user with an allow-all policy (unauthenticated); every later request must be signed by
  known credentials and is checked against their policies. `admin_environment` is for setup and inspection.
- `policy_document(grants, roots)`: the IAM policy the program renders for `etl_jobs.access` grants
  (`components.lake_access`) on the zone roots given (`{Zone: "s3://bucket/prefix/"}`).
- `run_under_policy(server, policy_documents, argv, env)`: creates a role holding those policy documents, assumes
  it, and runs `python -m etl_jobs ARGV` with its credentials; returns the CompletedProcess. `under_policy(...)`:
  the same for code run in this process (Lambda handlers), as a context manager.
- Both also check every ListObjectsV2 prefix the code sends against `list_prefixes` ((bucket, key prefix) pairs):
  a list outside them fails the command. Build them with `list_prefixes(grants, roots)`.
The infrastructure's tests can pass the policy documents the program renders instead of `policy_document(...)`.

What moto does NOT evaluate, so these tests cannot prove: IAM conditions (hence the ListObjectsV2 prefix check
here, for `s3:prefix`; `kms:ViaService` and encryption-context conditions go unchecked), KMS key policies and
grants (objects are not encrypted), resource policies (bucket policies, role trust policies), permission
boundaries and SCPs. A denied call surfaces as the job's permission error: exit code 5 and a message naming the
action and the key.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3

from components.lake_access import LakeArns, statements
from etl_jobs.access import Grant, Op, Zone
from tests.support.moto_server import REGION, MotoServer

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
LIST_ENV = "ETL_TEST_ALLOWED_LIST_PREFIXES"


class EnforcingMoto(MotoServer):
    """A moto server that enforces IAM after the first three requests of each reset."""

    admin_environment: dict[str, str]

    def start(self, timeout: float = 30.0) -> None:
        super().start(timeout)
        self.reset()

    def reset(self) -> None:
        """Empty every backend; enforce IAM again after three unauthenticated requests, which create the admin."""
        super().reset()
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth", data=b"3", method="POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=10):
            pass
        iam = boto3.client("iam", endpoint_url=self.endpoint, region_name=REGION, **_keys(self.client_environment()))
        iam.create_user(UserName="admin")
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        iam.put_user_policy(
            UserName="admin",
            PolicyName="all",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            ),
        )
        self.admin_environment = {
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def admin(self, service: str, region: str = REGION) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=region, **_keys(self.admin_environment))


def _keys(env: Mapping[str, str]) -> dict[str, str]:
    keys = {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"]}
    if env.get("AWS_SESSION_TOKEN"):
        keys["aws_session_token"] = env["AWS_SESSION_TOKEN"]
    return keys


@contextmanager
def enforcing_moto() -> Iterator[EnforcingMoto]:
    server = EnforcingMoto()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _root(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, (key.rstrip("/") + "/") if key.strip("/") else ""


def policy_document(grants: Iterable[Grant], roots: Mapping[Zone, str]) -> dict[str, Any]:
    """The IAM policy the program would render for exactly `grants` on these zone roots (`components.lake_access`,
    the generator every stage role comes from)."""
    buckets, prefixes = {}, {}
    for zone, uri in roots.items():
        bucket, base = _root(uri)
        buckets[zone.value], prefixes[zone.value] = f"arn:aws:s3:::{bucket}", base
    lake = LakeArns(buckets=buckets, roots=prefixes, key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/test", region=REGION)
    return {"Version": "2012-10-17", "Statement": statements(grants, lake)}


def list_prefixes(grants: Iterable[Grant], roots: Mapping[Zone, str]) -> list[tuple[str, str]]:
    """(bucket, key prefix) of every LIST grant: what `s3:prefix` conditions would allow."""
    out = []
    for grant in grants:
        if Op.LIST in grant.ops:
            bucket, base = _root(roots[grant.zone])
            out.append((bucket, base + grant.prefix))
    return out


def role_environment(server: EnforcingMoto, policy_documents: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Credentials of a fresh role holding exactly `policy_documents`, assumed through STS."""
    iam, sts = server.admin("iam"), server.admin("sts")
    name = f"stage-{uuid.uuid4().hex[:8]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/admin"}, "Action": "sts:AssumeRole"}
        ],
    }
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    for number, document in enumerate(policy_documents):
        iam.put_role_policy(RoleName=name, PolicyName=f"p{number}", PolicyDocument=json.dumps(document))
    credentials = sts.assume_role(RoleArn=arn, RoleSessionName=name)["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": server.endpoint,
    }


def run_under_policy(
    server: EnforcingMoto,
    policy_documents: Sequence[dict[str, Any]],
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    list_prefixes: Sequence[tuple[str, str]],
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """`python -m etl_jobs ARGV` under a role holding exactly `policy_documents` (plus the list-prefix check)."""
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ETL_"))},
        **env,
        **role_environment(server, policy_documents),
        LIST_ENV: json.dumps([list(pair) for pair in list_prefixes]),
    }
    return subprocess.run(
        [sys.executable, "-m", "tests.support.iam_child", *argv],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class ListOutsideGrantError(RuntimeError):
    """The code listed a prefix no LIST grant covers (moto does not evaluate `s3:prefix`; this check does)."""


def check_list_prefixes(allowed: Sequence[tuple[str, str]]) -> Any:
    """A botocore `before-parameter-build.s3.ListObjectsV2` handler refusing lists outside `allowed`."""

    def handler(params: dict[str, Any], **_: Any) -> None:
        bucket, prefix = params.get("Bucket", ""), params.get("Prefix", "")
        if not any(bucket == b and prefix.startswith(p) for b, p in allowed):
            raise ListOutsideGrantError(
                f"ListObjectsV2 on bucket {bucket!r} with prefix {prefix!r} is outside every declared LIST grant "
                f"{list(allowed)}"
            )

    return handler


def install_list_check(allowed: Sequence[tuple[str, str]], *, fresh: bool = False) -> None:
    """Register the list-prefix check on boto3's default session (a new one when `fresh`: a session created
    earlier may hold other credentials)."""
    if fresh or boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-parameter-build.s3.ListObjectsV2", check_list_prefixes(allowed))


def log_calls(path: str) -> None:
    """Append one JSON line per S3 call made through boto3's default session (for tightness checks)."""
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        entry = {
            "operation": model.name,
            "bucket": params.get("Bucket"),
            "key": params.get("Key", params.get("Prefix")),
        }
        with open(path, "a") as handle:
            handle.write(json.dumps(entry) + "\n")

    boto3.DEFAULT_SESSION.events.register("provide-client-params.s3.*", record)


OPERATION_OPS = {
    "GetObject": Op.READ,
    "HeadObject": Op.READ,
    "PutObject": Op.WRITE,
    "DeleteObject": Op.DELETE,
    "ListObjectsV2": Op.LIST,
}


def unused_grants(
    grants: Iterable[Grant], roots: Mapping[Zone, str], calls: Iterable[Mapping[str, Any]]
) -> list[tuple[Grant, Op]]:
    """(grant, op) pairs that no call in `calls` needed: a tight declaration has none for a covering scenario."""
    used = set()
    for call in calls:
        op = OPERATION_OPS.get(call["operation"])
        if op is not None:
            used.add((call["bucket"], call["key"] or "", op))
    missing = []
    for grant in grants:
        bucket, base = _root(roots[grant.zone])
        for op in sorted(grant.ops):
            if not any(b == bucket and k.startswith(base + grant.prefix) and o == op for b, k, o in used):
                missing.append((grant, op))
    return missing


@contextmanager
def under_policy(
    server: EnforcingMoto,
    policy_documents: Sequence[dict[str, Any]],
    env: Mapping[str, str],
    *,
    list_prefixes: Sequence[tuple[str, str]],
) -> Iterator[dict[str, str]]:
    """In this process: the environment and boto3's default session use the role's credentials and the list check,
    for the duration of the block (restored afterwards)."""
    from etl_jobs import storage

    saved = dict(os.environ)
    try:
        for key in [k for k in os.environ if k.startswith("AWS_")]:
            del os.environ[key]
        os.environ.update(env)
        credentials = role_environment(server, policy_documents)
        os.environ.update(credentials)
        install_list_check(list_prefixes, fresh=True)
        storage._client.cache_clear()
        yield credentials
    finally:
        os.environ.clear()
        os.environ.update(saved)
        boto3.DEFAULT_SESSION = None
        storage._client.cache_clear()
