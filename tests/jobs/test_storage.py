"""etl_jobs.storage keeps S3's meaning: not found, permission denied (naming the action and the URI), other failures
as infrastructure errors; and its conditional writes behave the same on S3 (moto) and on local files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from etl_jobs import storage
from tests.support.iam import EnforcingMoto, enforcing_moto, under_policy
from tests.support.lakes import s3_client
from tests.support.moto_server import MotoServer


@pytest.fixture
def s3(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    moto_server.reset()
    for key, value in moto_server.client_environment().items():
        monkeypatch.setenv(key, value)
    storage._client.cache_clear()
    client = s3_client(moto_server.client_environment())
    client.create_bucket(Bucket="lake")
    yield client
    storage._client.cache_clear()


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path) + "/"
    request.getfixturevalue("s3")
    return "s3://lake/"


def test_missing_objects_are_not_found(root: str) -> None:
    with pytest.raises(storage.NotFoundError, match=r"nope\.csv does not exist"):
        storage.read_bytes(root + "nope.csv")
    assert storage.head(root + "nope.csv") is None
    assert storage.list_files(root + "none/") == []
    storage.delete(root + "nope.csv")  # deleting what is not there is fine


def test_create_only_writes(root: str) -> None:
    uri = root + "a/b.json"
    first = storage.write(uri, b"1", if_none_match=True)
    with pytest.raises(storage.PreconditionFailedError):
        storage.write(uri, b"2", if_none_match=True)
    assert storage.read_bytes(uri) == b"1"
    assert storage.head(uri) is not None and first.etag


def test_writes_and_deletes_conditioned_on_a_version(root: str) -> None:
    uri = root + "table/part.parquet"
    storage.write(uri, b"v1")
    _, v1 = storage.read_with_info(uri)
    storage.write(uri, b"v2", if_match=v1.etag)
    with pytest.raises(storage.PreconditionFailedError):
        storage.write(uri, b"v3", if_match=v1.etag)  # v1 is gone: a stale writer cannot overwrite v2
    with pytest.raises(storage.PreconditionFailedError):
        storage.delete(uri, if_match=v1.etag)
    _, v2 = storage.read_with_info(uri)
    assert storage.read_bytes(uri) == b"v2"
    storage.delete(uri, if_match=v2.etag)
    assert storage.head(uri) is None
    with pytest.raises(storage.PreconditionFailedError):
        storage.delete(uri, if_match=v2.etag)


def test_listing_is_recursive_and_sorted(root: str) -> None:
    for key in ("p/b/2", "p/a/1", "q/3"):
        storage.write(root + key, b"x")
    assert storage.list_files(root + "p/") == [root + "p/a/1", root + "p/b/2"]


@pytest.fixture(scope="module")
def iam_moto() -> Iterator[EnforcingMoto]:
    with enforcing_moto() as server:
        yield server


def test_access_denied_is_a_permission_error_naming_action_and_uri(iam_moto: EnforcingMoto) -> None:
    iam_moto.reset()
    admin = iam_moto.admin("s3")
    admin.create_bucket(Bucket="lake")
    admin.put_object(Bucket="lake", Key="secret.csv", Body=b"x")
    nothing = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}
    with under_policy(iam_moto, [nothing], env={}, list_prefixes=[("lake", "")]):
        for action, call in (
            ("s3:GetObject", lambda: storage.read_bytes("s3://lake/secret.csv")),
            ("s3:PutObject", lambda: storage.write("s3://lake/secret.csv", b"y")),
            ("s3:DeleteObject", lambda: storage.delete("s3://lake/secret.csv")),
        ):
            with pytest.raises(storage.PermissionDeniedError) as denied:
                call()
            message = str(denied.value)
            assert message.startswith(f"permission denied: {action} on s3://lake/secret.csv")
            assert "lack" in message and "does not exist" not in message
            assert denied.value.action == action and denied.value.uri == "s3://lake/secret.csv"
        with pytest.raises(storage.PermissionDeniedError, match="s3:GetObject"):
            storage.head("s3://lake/secret.csv")  # a 403 on HEAD is never "not found"
    assert admin.get_object(Bucket="lake", Key="secret.csv")["Body"].read() == b"x"


def test_other_client_errors_are_infrastructure_errors(s3: Any) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(storage.NotFoundError):
        storage.read_bytes("s3://no-such-bucket/x")
    throttled = ClientError({"Error": {"Code": "SlowDown", "Message": "Reduce your request rate."}}, "PutObject")
    error = storage.translate(throttled, "s3:PutObject", "s3://lake/x")
    assert isinstance(error, storage.InfrastructureError)
    assert str(error) == "S3 refused s3:PutObject on s3://lake/x: SlowDown Reduce your request rate."


def test_a_conditional_write_onto_a_vanished_key_lost_its_race(root: str) -> None:
    uri = root + "gone.parquet"
    info = storage.write(uri, b"v1")
    storage.delete(uri)
    with pytest.raises(storage.PreconditionFailedError):
        storage.write(uri, b"v2", if_match=info.etag)


def test_local_paths_that_cannot_be_used_are_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(storage.OutputPathError, match=r"below\.json: a file stands where a folder is needed"):
        storage.write(str(tmp_path / "file" / "below.json"), b"{}")
    (tmp_path / "folder").mkdir()
    with pytest.raises(storage.OutputPathError, match="is a folder; a file is needed there"):
        storage.write(str(tmp_path / "folder"), json.dumps({}).encode())


def test_placing_a_staged_object_follows_the_same_conditions(root: str) -> None:
    staged, final = root + "_staging/c1/part.parquet", root + "order_date=2024-05-01/part-00000.parquet"
    storage.write(staged, b"new")
    storage.place(staged, final, if_none_match=True)
    assert storage.read_bytes(final) == b"new" and storage.read_bytes(staged) == b"new"
    with pytest.raises(storage.PreconditionFailedError):
        storage.place(staged, final, if_none_match=True)
    _, current = storage.read_with_info(final)
    storage.write(staged, b"newer")
    storage.place(staged, final, if_match=current.etag)
    assert storage.read_bytes(final) == b"newer"
    with pytest.raises(storage.PreconditionFailedError):
        storage.place(staged, final, if_match=current.etag)  # that version is gone
    storage.delete(staged)
    assert storage.read_bytes(final) == b"newer"  # the placed object does not depend on the staged one
