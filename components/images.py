"""Content-addressed tags for the container images (pure Python: no pulumi import, unit-tested on its own).

One image, `containers/etl/`, serves all four ECS stages (extract, transform, validate, load): they share 100% of
their code (`etl_jobs`) and dependencies (uv.lock's `jobs` group), so one image means one build, one push, one scan and
one digest to pin; each task definition picks its stage with the container command (`["extract", ...]`), since the
image's entrypoint is `python -m etl_jobs`.

The build context is the repository root (the image needs `etl_jobs/`, which lives there) narrowed by an ignore
file to `etl_jobs/` (which holds its pins, `etl_jobs/requirements.txt`). `context_hash()` turns that context, the
Dockerfile, the build args and the target platform into the image tag, so an unchanged context means the same tag:
no rebuild, no push, no diff.

Ignore file: Docker's rules, implemented here (`DockerIgnore`) rather than borrowed. `pathspec`'s gitwildmatch is
gitignore, which differs where it matters: a Docker pattern is anchored at the context root (`*.pyc` only matches
top-level files; gitignore matches at any depth), `!` can re-include a file under an excluded directory (gitignore
cannot), and a trailing `/` is dropped rather than meaning "directories only". The PyPI packages that claim
dockerignore matching are unmaintained or tiny single-author ports; moby's matcher is ~100 lines and fully
documented, so it is reproduced here with tests (tests/unit/test_images.py).

Which ignore file: `<Dockerfile>.dockerignore` beside the Dockerfile wins (BuildKit's rule), else
`<context>/.dockerignore` (the classic rule).

Why a rebuild of unchanged content can never be refused. ECR tags are IMMUTABLE (CONTROLS row 49): pushing a new
digest under an existing tag fails. pulumi-docker's `docker.Image` rebuilds and pushes (under the same `imageName`)
whenever any input it diffs on changes: the `contextDigest` it hashes in Check (each file's path, content and FULL
Go file mode, so a checkout under another umask differs), the `build` settings, `buildOnPreview`, `skipPush` (never
the registry credentials). A rebuild gives a new digest even for the same files (BuildKit's timestamps). So:
- `stage_context()` copies exactly the hashed files into `build/images/<image>-<tag>/` with normalised modes
  (0644, or 0755 when executable) and the Dockerfile beside them, and the image is built from that directory: the
  digest pulumi-docker computes is then a function of what the tag covers, the same on every machine and umask;
- `context_hash()` also covers every other input pulumi-docker diffs on (`extra`), so whatever makes it rebuild gives
  a new tag, which the repository accepts.
Unchanged content therefore means the same tag and no diff at all; changed content means a new tag. Checking the
registry for the tag before pushing was the alternative: it needs a registry call during preview and still leaves
the provider wanting to push.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

TAG_LENGTH = 16
REPO_ROOT = Path(__file__).resolve().parent.parent
ETL_IMAGE_DIR = REPO_ROOT / "containers" / "etl"
ETL_DOCKERFILE = ETL_IMAGE_DIR / "Dockerfile"
# Bumped when the hash layout below changes, so old and new tags can never collide.
_HASH_FORMAT = b"etl-platform-context-hash/v2\0"
# Where build contexts are staged with normalised modes (ignored by git, like build/lambda/).
STAGING_DIR = REPO_ROOT / "build" / "images"

_REGEX_SPECIALS = set(".+()|{}$^")


@dataclass(frozen=True)
class _Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]
    # The literal part before the first wildcard; used to decide if an exception could match under a directory.
    literal_prefix: str


def _compile(pattern: str) -> re.Pattern[str]:
    """Translate one cleaned dockerignore pattern to a regex, as moby/patternmatcher does."""
    out = ["^"]
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                # `**/` is the same as `**`: any number of directories, including none.
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(.*/)?")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            # Escapes the next character literally.
            i += 1
            if i < n:
                out.append(re.escape(pattern[i]))
        elif ch == "[":
            # A character class, copied through; `[!...]` is filepath.Match's negation.
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        elif ch in _REGEX_SPECIALS:
            out.append("\\" + ch)
        else:
            out.append(ch)
        i += 1
    out.append("$")
    return re.compile("".join(out), re.DOTALL)


def _clean(path: str) -> str:
    """Go's filepath.Clean for posix paths: collapse `//`, `.`, `..`."""
    cleaned = os.path.normpath(path).replace(os.sep, "/")
    # normpath keeps a leading `//`; Go does not.
    while cleaned.startswith("//"):
        cleaned = cleaned[1:]
    return cleaned


def parse_dockerignore(text: str) -> list[str]:
    """The patterns of a .dockerignore, normalised as Docker's ReadAll does (comments, blanks, `/`, `!`)."""
    patterns: list[str] = []
    for number, raw in enumerate(text.splitlines()):
        line = raw.removeprefix("\ufeff") if number == 0 else raw
        # A comment only when `#` is the first character, before trimming (Docker's rule).
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = _clean(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append(("!" if invert else "") + line)
    return patterns


class DockerIgnore:
    """Docker's .dockerignore matcher: the last matching pattern wins; a path is excluded if it or a parent is."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: list[_Pattern] = []
        for text in patterns:
            exclusion = text.startswith("!")
            body = text[1:] if exclusion else text
            if not body:
                continue
            literal = re.split(r"[*?\[\\]", body, maxsplit=1)[0]
            self.patterns.append(_Pattern(text, exclusion, _compile(body), literal))

    @classmethod
    def from_text(cls, text: str) -> DockerIgnore:
        return cls(parse_dockerignore(text))

    def excluded(self, path: str) -> bool:
        """True when `path` (posix, relative to the context root) would be left out of the build context."""
        path = _clean(path)
        parents = path.split("/")[:-1]
        matched = False
        for pattern in self.patterns:
            # An inclusion cannot change an already-excluded path, nor an exception a not-yet-excluded one.
            if pattern.exclusion != matched:
                continue
            hit = pattern.regex.match(path) is not None
            if not hit:
                hit = any(pattern.regex.match("/".join(parents[: i + 1])) for i in range(len(parents)))
            if hit:
                matched = not pattern.exclusion
        return matched

    def may_include_under(self, directory: str) -> bool:
        """Whether some `!` exception could re-include a path under an excluded `directory` (so it must be walked).

        Conservative: a wildcard before the first `/` of an exception means "maybe", which only costs a walk.
        """
        prefix = directory.rstrip("/") + "/"
        for pattern in self.patterns:
            if not pattern.exclusion:
                continue
            literal = pattern.literal_prefix
            if literal.startswith(prefix) or prefix.startswith(literal):
                return True
        return False


def ignore_file_for(context_dir: Path, dockerfile: Path) -> Path | None:
    """The ignore file Docker would use: `<Dockerfile>.dockerignore` first, then `<context>/.dockerignore`."""
    for candidate in (dockerfile.with_name(dockerfile.name + ".dockerignore"), context_dir / ".dockerignore"):
        if candidate.is_file():
            return candidate
    return None


def context_files(context_dir: Path | str, dockerfile: Path | str | None = None) -> list[str]:
    """Sorted posix paths (relative to the context) of the files and symlinks the build context sends."""
    root = Path(context_dir).resolve()
    dockerfile_path = _resolve_dockerfile(root, dockerfile)
    ignore_path = ignore_file_for(root, dockerfile_path)
    matcher = DockerIgnore.from_text(ignore_path.read_text()) if ignore_path else DockerIgnore([])
    return sorted(_walk(root, matcher))


def _resolve_dockerfile(root: Path, dockerfile: Path | str | None) -> Path:
    if dockerfile is None:
        return root / "Dockerfile"
    path = Path(dockerfile)
    return path if path.is_absolute() else root / path


def _walk(root: Path, matcher: DockerIgnore) -> Iterator[str]:
    stack = [""]
    while stack:
        relative_dir = stack.pop()
        with os.scandir(root / relative_dir if relative_dir else root) as entries:
            for entry in entries:
                relative = f"{relative_dir}/{entry.name}" if relative_dir else entry.name
                excluded = matcher.excluded(relative)
                if entry.is_dir(follow_symlinks=False):
                    # Prune excluded directories (.venv, .git) unless an exception could re-include something inside.
                    if not excluded or matcher.may_include_under(relative):
                        stack.append(relative)
                elif not excluded:
                    yield relative


def context_hash(
    context_dir: Path | str,
    dockerfile: Path | str | None = None,
    build_args: Mapping[str, str] | None = None,
    platform: str = "",
    length: int = TAG_LENGTH,
    extra: Mapping[str, str] | None = None,
) -> str:
    """The image tag: the first `length` hex chars of a sha256 over everything that decides the image.

    Covers each context file's posix path, executable bit and content (or symlink target), the ignore file and the
    Dockerfile (even when they sit outside the context or are themselves ignored), the build args sorted by name,
    the platform, and `extra`: the other image inputs the builder's provider diffs on (builder version,
    buildOnPreview, skipPush), so a change that makes it rebuild also gives a new tag. No mtimes, owners or absolute
    paths, so the tag is the same on every machine and checkout. Only the executable bit of the mode is used: git
    records nothing else, and `stage_context()` normalises the rest before the builder hashes the files.
    """
    root = Path(context_dir).resolve()
    dockerfile_path = _resolve_dockerfile(root, dockerfile)
    ignore_path = ignore_file_for(root, dockerfile_path)
    digest = hashlib.sha256(_HASH_FORMAT)

    def field(tag: bytes, *values: bytes) -> None:
        # Length-prefixed fields, so no two different inputs can produce the same byte stream.
        digest.update(tag)
        for value in values:
            digest.update(len(value).to_bytes(8, "big"))
            digest.update(value)

    field(b"dockerfile", dockerfile_path.read_bytes())
    field(b"ignore", ignore_path.read_bytes() if ignore_path else b"")
    for name, value in sorted((build_args or {}).items()):
        field(b"arg", name.encode(), value.encode())
    field(b"platform", platform.encode())
    for name, value in sorted((extra or {}).items()):
        field(b"input", name.encode(), value.encode())
    for relative in context_files(root, dockerfile_path):
        full = root / relative
        info = full.lstat()
        if stat.S_ISLNK(info.st_mode):
            field(b"link", relative.encode(), os.readlink(full).encode())
        else:
            executable = b"x" if info.st_mode & 0o111 else b"-"
            field(b"file", relative.encode(), executable, full.read_bytes())
    return digest.hexdigest()[:length]


def write_context_tar(context_dir: Path | str, dockerfile: Path | str | None, fileobj: IO[bytes]) -> list[str]:
    """Write the build context as Docker would send it (for `docker build -f <dockerfile> - < tar`).

    The same selection as `context_hash`, so what is built is exactly what was hashed, whichever builder reads it
    (the legacy builder ignores `<Dockerfile>.dockerignore`; a tar on stdin makes that moot). The Dockerfile and the
    ignore file are always added, as Docker does. Owners, mtimes and modes are normalised for a reproducible tar.
    Returns the member names.
    """
    root = Path(context_dir).resolve()
    dockerfile_path = _resolve_dockerfile(root, dockerfile)
    names = set(context_files(root, dockerfile_path))
    ignore_path = ignore_file_for(root, dockerfile_path)
    for extra in (dockerfile_path, ignore_path):
        if extra is not None and extra.resolve().is_relative_to(root):
            names.add(PurePosixPath(extra.resolve().relative_to(root)).as_posix())
    with tarfile.open(fileobj=fileobj, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(names):
            full = root / name
            info = tar.gettarinfo(str(full), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if info.isfile():
                info.mode = 0o755 if info.mode & 0o111 else 0o644
                with full.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    return sorted(names)


def stage_context(
    context_dir: Path | str, dockerfile: Path | str | None, tag: str, name: str, out_dir: Path | None = None
) -> Path:
    """The build context as a directory of its own: `<out_dir>/<name>-<tag>/` holding exactly the files
    `context_files()` selects, modes normalised (0644; 0755 when executable), symlinks kept, and the Dockerfile as
    `Dockerfile`. Written once per tag, atomically (a rename), so concurrent runs and re-runs never see half a copy.
    """
    root = Path(context_dir).resolve()
    dockerfile_path = _resolve_dockerfile(root, dockerfile)
    target = (out_dir or STAGING_DIR) / f"{name}-{tag}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}-{tag}-", dir=target.parent))
    try:
        for relative in context_files(root, dockerfile_path):
            source, copy = root / relative, scratch / relative
            copy.parent.mkdir(parents=True, exist_ok=True)
            if source.is_symlink():
                os.symlink(os.readlink(source), copy)
                continue
            copy.write_bytes(source.read_bytes())
            os.chmod(copy, 0o755 if source.lstat().st_mode & 0o111 else 0o644)
        staged_dockerfile = scratch / "Dockerfile"
        staged_dockerfile.write_bytes(dockerfile_path.read_bytes())
        os.chmod(staged_dockerfile, 0o644)
        for directory in (scratch, *(p for p in scratch.rglob("*") if p.is_dir() and not p.is_symlink())):
            os.chmod(directory, 0o755)
        os.rename(scratch, target)
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)
        if not target.is_dir():
            raise
    return target
