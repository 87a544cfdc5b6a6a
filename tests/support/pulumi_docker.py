"""pulumi-docker's `contextDigest`, reproduced: what its provider hashes in Check to decide whether `docker.Image`
must rebuild and push (provider/provider.go, `hashContext` and `contextHashAccumulator.hashPath`, pulumi-docker 4.x).

The Dockerfile first, under the name `Dockerfile` with mode 0; then every file and symlink of the context that the
ignore file keeps (`<Dockerfile>.dockerignore` first, else `<context>/.dockerignore`), in walk order (lexical within
each directory): its slash path, Go's `FileMode.String()` of its full mode, the sha256 of its content (of the
resolved link path for a symlink) and a NUL byte. The digest is the hex sha256 of all of that.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from components.images import context_files


def go_file_mode(mode: int) -> str:
    """Go's `fs.FileMode.String()` for what `os.Lstat` reports (regular files and symlinks)."""
    kind = "L" if stat.S_ISLNK(mode) else ""
    flags = (
        ("u" if mode & stat.S_ISUID else "")
        + ("g" if mode & stat.S_ISGID else "")
        + ("t" if mode & stat.S_ISVTX else "")
    )
    prefix = (kind + flags) or "-"
    permissions = "".join(c if mode & (1 << (8 - i)) else "-" for i, c in enumerate("rwxrwxrwx"))
    return prefix + permissions


def context_digest(context: str, dockerfile: str) -> str:
    """The digest for `build.context` and `build.dockerfile` as given to `docker.Image` (paths relative to the cwd)."""
    accumulated = bytearray()

    def add(name: str, mode_text: str, content: bytes) -> None:
        accumulated.extend(name.encode() + mode_text.encode() + hashlib.sha256(content).digest() + b"\0")

    add("Dockerfile", "----------", Path(dockerfile).read_bytes())
    for relative in sorted(context_files(context, dockerfile), key=lambda path: path.split("/")):
        full = os.path.join(context, relative)
        info = os.lstat(full)
        if stat.S_ISLNK(info.st_mode):
            resolved = os.path.relpath(os.path.realpath(full)) if not os.path.isabs(context) else os.path.realpath(full)
            add(relative, go_file_mode(info.st_mode), resolved.encode())
        else:
            add(relative, go_file_mode(info.st_mode), Path(full).read_bytes())
    return hashlib.sha256(bytes(accumulated)).hexdigest()
