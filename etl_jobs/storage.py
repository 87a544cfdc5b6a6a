"""Bytes in and out of local paths and `s3://` URIs: the only I/O the job code does, with S3's meaning kept.

S3 goes through boto3 (one client per process, created lazily), which honours `AWS_ENDPOINT_URL`, so the same code
talks to AWS, to moto in tests and to LocalStack. Objects are read whole.

Errors keep what S3 said (`translate` is the one place that maps them):
- `NotFoundError`: NoSuchKey / 404 / NoSuchBucket, or a missing local file;
- `PermissionDeniedError`: AccessDenied / 403 (or a local EACCES): names the action and the URI; the role lacks it;
- `InfrastructureError`: any other client error, missing credentials, an endpoint that does not answer;
- `PreconditionFailedError`: a conditional write lost a race (another writer got there first);
- `OutputPathError`: a local location that cannot be a file or folder (a file where a folder must be).

Conditional writes: `write(uri, data, if_none_match=True)` creates only when absent; `write(uri, data, if_match=etag)`
and `delete(uri, if_match=etag)` act only on that exact version. On S3 these are the `If-None-Match: *` / `If-Match`
headers. On local files the same semantics come from an exclusive `flock` on the folder (held while comparing and
replacing) and `os.link` for create-only; the local etag is inode-mtime-size, which changes
on every replace. Every write is atomic: readers see the old object or the new one, never a partial file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

_HIDDEN = (".tmp-",)


class StorageError(Exception):
    """Base of every storage failure; `uri` and `action` say what was attempted."""

    def __init__(self, message: str, *, uri: str = "", action: str = "") -> None:
        super().__init__(message)
        self.uri = uri
        self.action = action


class NotFoundError(StorageError, FileNotFoundError):
    """The object or file does not exist."""


# The name the stages used before; kept because it reads well at call sites.
InputNotFoundError = NotFoundError


class PermissionDeniedError(StorageError, PermissionError):
    """The credentials in use may not do `action` on `uri` (S3 AccessDenied, or a local permission error)."""


class InfrastructureError(StorageError):
    """S3 or the local file system failed for a reason other than a missing object or a permission."""


class PreconditionFailedError(StorageError):
    """A conditional write or delete found another version than the one it was conditioned on."""


class OutputPathError(StorageError):
    """A local location cannot be used: a file stands where a folder must be, or the reverse."""


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing or a head says about one object: its URI, version tag, size and modification stamp."""

    uri: str
    etag: str
    size: int
    modified: str

    def modified_at(self) -> datetime | None:
        """The modification stamp as a time (S3 gives ISO text; local files their mtime in nanoseconds); None when
        the listing gave none."""
        if self.modified.isdigit():
            return datetime.fromtimestamp(int(self.modified) / 1e9, UTC)
        return datetime.fromisoformat(self.modified) if self.modified else None


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def join(base: str, *parts: str) -> str:
    """`base` and relative `parts` joined with `/` (local paths and s3 URIs alike)."""
    out = base
    for part in parts:
        out = out.rstrip("/") + "/" + part.strip("/")
    return out


def split(uri: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI."""
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


@cache
def _client() -> Any:
    import boto3

    return boto3.client("s3")


_NOT_FOUND = {"NoSuchKey", "404", "NotFound", "NoSuchBucket"}
_DENIED = {"AccessDenied", "403", "Forbidden", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
_PRECONDITION = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


def translate(error: BaseException, action: str, uri: str) -> StorageError:
    """The storage error that says what `error` (from boto3/botocore) means for `action` on `uri`."""
    from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = str(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if code in _NOT_FOUND or (not code and status == "404"):
            return NotFoundError(f"{uri} does not exist", uri=uri, action=action)
        if code in _DENIED or status == "403":
            return PermissionDeniedError(
                f"permission denied: {action} on {uri} ({code or status}); the role or credentials in use lack "
                f"{action} there. Grant it (see etl_jobs.access) or run with a role that has it",
                uri=uri,
                action=action,
            )
        if code in _PRECONDITION or status == "412":
            return PreconditionFailedError(
                f"{action} on {uri}: another writer changed it first", uri=uri, action=action
            )
        message = str(error.response.get("Error", {}).get("Message", "")) or str(error)
        return InfrastructureError(
            f"S3 refused {action} on {uri}: {code or status} {message}".strip(), uri=uri, action=action
        )
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return InfrastructureError(
            f"no AWS credentials to {action} {uri}: run with a role, or set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY",
            uri=uri,
            action=action,
        )
    return InfrastructureError(f"cannot reach S3 to {action} {uri}: {error}", uri=uri, action=action)


@contextlib.contextmanager
def _s3_call(action: str, uri: str) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise translate(error, action, uri) from error


@contextlib.contextmanager
def _local_call(action: str, uri: str) -> Iterator[None]:
    try:
        yield
    except StorageError:
        raise
    except FileNotFoundError as error:
        raise NotFoundError(f"{uri} does not exist", uri=uri, action=action) from error
    except IsADirectoryError as error:
        raise OutputPathError(f"{uri} is a folder; a file is needed there", uri=uri, action=action) from error
    except NotADirectoryError as error:
        raise OutputPathError(
            f"cannot {action} {uri}: a part of that path is a file, not a folder; choose another location or "
            "remove the file",
            uri=uri,
            action=action,
        ) from error
    except PermissionError as error:
        raise PermissionDeniedError(
            f"permission denied: cannot {action} {uri} ({error.strerror}); make it writable for this user or choose "
            "another location",
            uri=uri,
            action=action,
        ) from error
    except OSError as error:
        if error.errno == errno.EEXIST:
            raise OutputPathError(
                f"cannot {action} {uri}: a file stands where a folder is needed", uri=uri, action=action
            ) from error
        raise InfrastructureError(f"cannot {action} {uri}: {error}", uri=uri, action=action) from error


def _local_info(path: Path) -> ObjectInfo:
    stat = path.stat()
    return ObjectInfo(
        str(path), f"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}", stat.st_size, str(stat.st_mtime_ns)
    )


def _s3_info(uri: str, head: dict[str, Any]) -> ObjectInfo:
    modified = head.get("LastModified")
    return ObjectInfo(
        uri,
        str(head.get("ETag", "")).strip('"'),
        int(head.get("ContentLength", head.get("Size", 0))),
        modified.isoformat() if modified is not None else "",
    )


# --- reading ------------------------------------------------------------------------------------------------------


def read_with_info(uri: str) -> tuple[bytes, ObjectInfo]:
    """The object's bytes and the version they come from."""
    if is_s3(uri):
        bucket, key = split(uri)
        with _s3_call("s3:GetObject", uri):
            response = _client().get_object(Bucket=bucket, Key=key)
            data = bytes(response["Body"].read())
        return data, _s3_info(uri, {**response, "ContentLength": len(data)})
    with _local_call("read", uri):
        path = Path(uri)
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            data = handle.read()
        etag = f"{info.st_ino:x}-{info.st_mtime_ns:x}-{info.st_size:x}"
        return data, ObjectInfo(uri, etag, len(data), str(info.st_mtime_ns))


def read_bytes(uri: str) -> bytes:
    return read_with_info(uri)[0]


def head(uri: str) -> ObjectInfo | None:
    """What the object is now, or None when it does not exist."""
    if is_s3(uri):
        bucket, key = split(uri)
        try:
            with _s3_call("s3:GetObject", uri):
                return _s3_info(uri, _client().head_object(Bucket=bucket, Key=key))
        except NotFoundError:
            return None
    path = Path(uri)
    with _local_call("read", uri):
        if not path.is_file():
            return None
        return _local_info(path)


def exists(uri: str) -> bool:
    return head(uri) is not None


def list_infos(prefix: str) -> list[ObjectInfo]:
    """Every object under `prefix` (a folder: recursive, sorted by URI), without hidden temporary and lock files."""
    if is_s3(prefix):
        bucket, key = split(prefix.rstrip("/") + "/")
        if key == "/":
            key = ""
        out: list[ObjectInfo] = []
        with _s3_call("s3:ListBucket", f"s3://{bucket}/{key}"):
            for page in _client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
                out.extend(_s3_info(f"s3://{bucket}/{item['Key']}", item) for item in page.get("Contents", []))
        return sorted(out, key=lambda info: info.uri)
    root = Path(prefix)
    with _local_call("list", prefix):
        if not root.is_dir():
            return []
        found = []
        for path in root.rglob("*"):
            if path.name.startswith(_HIDDEN) or not path.is_file():
                continue
            with contextlib.suppress(FileNotFoundError):  # removed while listing
                found.append(_local_info(path))
    return sorted(found, key=lambda info: info.uri)


def list_files(prefix: str) -> list[str]:
    """URIs of every object under `prefix` (recursive, sorted)."""
    return [info.uri for info in list_infos(prefix)]


# --- writing ------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on the folder itself (flock on its descriptor): no lock file is left behind."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _temp_beside(path: Path, data: bytes) -> str:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def _write_local(uri: str, data: bytes, if_match: str | None, if_none_match: bool) -> ObjectInfo:
    path = Path(uri)
    with _local_call("write", uri):
        if path.is_dir():
            raise OutputPathError(f"{uri} is a folder; a file is needed there", uri=uri, action="write")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_beside(path, data)
        try:
            if if_none_match:
                try:
                    os.link(tmp, path)  # fails when the name exists: create-only, atomically
                except FileExistsError as error:
                    raise PreconditionFailedError(f"{uri} already exists", uri=uri, action="write") from error
            elif if_match is not None:
                with _folder_lock(path.parent):
                    current = _local_info(path).etag if path.is_file() else None
                    if current != if_match:
                        raise PreconditionFailedError(f"{uri} changed since it was read", uri=uri, action="write")
                    os.replace(tmp, path)
            else:
                os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return _local_info(path)


def write(uri: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> ObjectInfo:
    """Write `data` atomically; with a condition, only onto that version (`if_match`) or only when absent."""
    if if_match is not None and if_none_match:
        raise ValueError("give if_match or if_none_match, not both")
    if not is_s3(uri):
        return _write_local(uri, data, if_match, if_none_match)
    bucket, key = split(uri)
    extra: dict[str, str] = {}
    if if_match is not None:
        extra["IfMatch"] = f'"{if_match}"'
    if if_none_match:
        extra["IfNoneMatch"] = "*"
    try:
        with _s3_call("s3:PutObject", uri):
            response = _client().put_object(Bucket=bucket, Key=key, Body=data, **extra)
    except NotFoundError:
        if if_match is None:
            raise
        # S3 answers a PUT conditioned on a version of a key that no longer exists with 404 NoSuchKey.
        raise PreconditionFailedError(f"{uri} is gone since it was read", uri=uri, action="s3:PutObject") from None
    return ObjectInfo(uri, str(response.get("ETag", "")).strip('"'), len(data), "")


def write_bytes(uri: str, data: bytes) -> None:
    write(uri, data)


def place(source: str, target: str, *, if_match: str | None = None, if_none_match: bool = False) -> None:
    """Make `target` hold `source`'s bytes, with the same conditions as `write` (for publishing staged objects).

    Local files are hard-linked into place (atomically, no bytes copied); S3 objects are read and written with a
    conditional PUT (moto cannot check the conditions of a server-side copy, so none is relied on)."""
    if is_s3(source) or is_s3(target):
        write(target, read_bytes(source), if_match=if_match, if_none_match=if_none_match)
        return
    path = Path(target)
    with _local_call("write", target):
        path.parent.mkdir(parents=True, exist_ok=True)
        if if_none_match:
            try:
                os.link(source, path)
            except FileExistsError as error:
                raise PreconditionFailedError(f"{target} already exists", uri=target, action="write") from error
            return
        tmp = path.parent / f".tmp-{os.getpid()}-{id(path):x}-{path.name}"
        os.link(source, tmp)
        try:
            if if_match is None:
                os.replace(tmp, path)
                return
            with _folder_lock(path.parent):
                current = _local_info(path).etag if path.is_file() else None
                if current != if_match:
                    raise PreconditionFailedError(f"{target} changed since it was read", uri=target, action="write")
                os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def delete(uri: str, *, if_match: str | None = None) -> None:
    """Remove one object; a missing one is fine, unless `if_match` names the version that must be there."""
    if is_s3(uri):
        bucket, key = split(uri)
        extra = {"IfMatch": f'"{if_match}"'} if if_match is not None else {}
        try:
            with _s3_call("s3:DeleteObject", uri):
                _client().delete_object(Bucket=bucket, Key=key, **extra)
        except NotFoundError:
            if if_match is not None:
                raise PreconditionFailedError(f"{uri} is gone already", uri=uri, action="s3:DeleteObject") from None
        return
    path = Path(uri)
    with _local_call("delete", uri):
        if if_match is None:
            path.unlink(missing_ok=True)
            return
        if not path.parent.is_dir():
            raise PreconditionFailedError(f"{uri} is gone already", uri=uri, action="delete")
        with _folder_lock(path.parent):
            current = _local_info(path).etag if path.is_file() else None
            if current != if_match:
                raise PreconditionFailedError(f"{uri} changed since it was read", uri=uri, action="delete")
            path.unlink()
