"""Bytes in and out of local paths and `s3://` URIs, the only I/O the stages do.

S3 goes through boto3 (created lazily, once per process), which honours `AWS_ENDPOINT_URL` natively, so the same code
talks to AWS, to moto in tests and to LocalStack. Objects are read whole: a run's input is bounded by the Lambda and
container memory the architectures give it, and Polars parses from memory fastest.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any


class InputNotFoundError(FileNotFoundError):
    """A location the stage must read does not exist."""


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def join(base: str, *parts: str) -> str:
    """`base` and relative `parts` joined with `/` (works for local paths and s3 URIs)."""
    out = base
    for part in parts:
        out = out.rstrip("/") + "/" + part.strip("/")
    return out


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


@cache
def _client() -> Any:
    import boto3

    return boto3.client("s3")


def read_bytes(uri: str) -> bytes:
    if is_s3(uri):
        bucket, key = _split(uri)
        client = _client()
        try:
            return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except (client.exceptions.NoSuchKey, client.exceptions.NoSuchBucket) as error:
            raise InputNotFoundError(f"{uri} does not exist") from error
    try:
        return Path(uri).read_bytes()
    except FileNotFoundError as error:
        raise InputNotFoundError(f"{uri} does not exist") from error
    except IsADirectoryError as error:
        raise InputNotFoundError(f"{uri} is a directory; give the path of a file") from error


def write_bytes(uri: str, data: bytes) -> None:
    """Write atomically: readers see the old object or the new one, never a partial file."""
    if is_s3(uri):
        bucket, key = _split(uri)
        _client().put_object(Bucket=bucket, Key=key, Body=data)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def copy(source: str, target: str) -> int:
    """Copy one object/file unchanged; returns its size in bytes. S3 to S3 is a server-side copy, local to local a
    kernel copy, so extract never pulls the data through Python when it does not have to."""
    if is_s3(source) and is_s3(target):
        bucket, key = _split(source)
        target_bucket, target_key = _split(target)
        client = _client()
        try:
            size = int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
        except client.exceptions.ClientError as error:
            raise InputNotFoundError(f"{source} does not exist") from error
        client.copy({"Bucket": bucket, "Key": key}, target_bucket, target_key)
        return size
    if not is_s3(source) and not is_s3(target):
        path = Path(source)
        if not path.is_file():
            raise InputNotFoundError(f"{source} does not exist" + (" as a file" if path.exists() else ""))
        destination = Path(target)
        destination.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=".tmp-")
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, destination)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return destination.stat().st_size
    data = read_bytes(source)
    write_bytes(target, data)
    return len(data)


def exists(uri: str) -> bool:
    if is_s3(uri):
        bucket, key = _split(uri)
        client = _client()
        try:
            client.head_object(Bucket=bucket, Key=key)
        except client.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return True
    return Path(uri).is_file()


def list_files(prefix: str) -> list[str]:
    """URIs of every file under `prefix` (recursive, sorted), skipping hidden temp files."""
    if is_s3(prefix):
        bucket, key = _split(prefix.rstrip("/") + "/")
        out: list[str] = []
        for page in _client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            out.extend(f"s3://{bucket}/{item['Key']}" for item in page.get("Contents", []))
        return sorted(out)
    root = Path(prefix)
    if not root.is_dir():
        return []
    return sorted(str(p) for p in root.rglob("*") if p.is_file() and not p.name.startswith(".tmp-"))


def delete(uri: str) -> None:
    if is_s3(uri):
        bucket, key = _split(uri)
        _client().delete_object(Bucket=bucket, Key=key)
        return
    Path(uri).unlink(missing_ok=True)
