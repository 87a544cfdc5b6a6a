"""Lambda code packages: the `etl_jobs` function archive and the dependency layer, built reproducibly.

Creates no resources: pure functions returning Pulumi assets and hashes.

- `function_package()` zips `etl_jobs/` deterministically (sorted entries, fixed timestamps and modes, no
  `__pycache__`/`*.pyc`), so unchanged code gives a byte-identical archive and the same `source_code_hash`: no diff.
- `layer_package(architecture)` is the dependency layer for the Lambda platform: exactly `etl_jobs/requirements.txt`
  (uv.lock's `jobs` group: Polars, Powertools, boto3), the pins the image installs and the tests run; boto3 is
  included rather than taken from the runtime, whose version AWS moves on its own. It is built OUTSIDE the Pulumi
  program, by `python -m components.packaging build-layer --architecture arm64` (pip downloads the hash-checked
  manylinux wheels for CPython 3.12 into a cache keyed by the hash of the pins and the platform, installs them into
  `python/` and zips that deterministically). The program never downloads:
  it refers to the layer by `layer_key()` (computed from the lock file alone, so offline previews and the mocks work
  on a fresh clone), and `pulumi up` fails with a `LayerNotBuiltError` naming the command when the zip is missing.

- `glue_wheels_package()` is the dependency bundle of the Glue job: a "zip of wheels" (Glue 5.0 and later install it
  from `--additional-python-modules` with pip, here with `--no-index`: no package index at run time) holding the
  manylinux wheels of `etl_jobs/requirements.txt` for Glue 5.1's CPython 3.11 on x86_64, and that requirements file.
  The `spark` group (pyspark, py4j) is not in it: Glue provides that Spark (pyspark 3.5.6 is what the group pins), and
  installing a second one would shadow Glue's. Built like the layer, outside the program
  (`python -m components.packaging build-glue-wheels`), referred to by `glue_wheels_key()` from the lock alone.

- `spark_env_package(architecture)` is the Python environment the Spark job runs in on EMR (serverless and clusters):
  a relocatable CPython (`SPARK_ENV_PYTHON`, the Python of Glue 5.1) with exactly `etl_jobs/requirements.txt`
  installed into its site-packages, packed as a tar.gz that Spark unpacks next to the driver and every executor
  (`spark.archives ...#environment`, then `./environment/bin/python3`). EMR releases bring their own Spark (pyspark and
  py4j come from the release) but Python 3.9 by default; the archive brings 3.11 and the job's dependencies, so no
  package index is needed at run time. Built outside the program like the layer, by
  `python -m components.packaging build-spark-env --architecture arm64` (uv downloads the interpreter, a
  python-build-standalone build, and the hash-checked manylinux wheels once; the result is cached by `spark_env_key`);
  the program refers to it by key and `pulumi up` fails with `SparkEnvNotBuiltError` naming the command when missing.

Build outputs live under `build/lambda/` (`build/lambda/spark-env/` for the Spark environment) in the repo (ignored by
git), or `$ETL_BUILD_DIR` when set (CI caches it).
- `postgres_layer_package(architecture)` is the database runner's second layer: uv.lock's `postgres` group
  (`etl_jobs/requirements-postgres.txt`: psycopg with its binary libpq) installed like the main layer, plus the RDS CA
  bundle at `rds/global-bundle.pem` (so `/opt/rds/global-bundle.pem` in the function, what ETL_DATABASE_CA_BUNDLE
  names), downloaded from AWS's trust store (`RDS_CA_BUNDLE_URL`) when the layer is built
  (`python -m components.packaging build-postgres-layer`, part of `make layers`). That build needs the network: without
  it, it fails and says which URL it could not read. The bundle is not in git (AWS adds certificate authorities to it);
  `--force` rebuilds the layer with the current bundle.

"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import pulumi

from components.settings import LambdaArchitecture

REPO_ROOT = Path(__file__).resolve().parent.parent
JOBS_DIR = REPO_ROOT / "etl_jobs"
LAYER_REQUIREMENTS = JOBS_DIR / "requirements.txt"
LAYER_PYTHON_VERSION = "3.12"
LAYER_RUNTIMES = ("python3.12", "python3.13")
# Lambda's python3.12+ runtimes run on Amazon Linux 2023 (glibc 2.34): any manylinux wheel up to 2_34 fits.
_PLATFORM_TAGS = {
    LambdaArchitecture.ARM64: ("aarch64-manylinux_2_34",),
    LambdaArchitecture.X86_64: ("x86_64-manylinux_2_34",),
}
# 1980-01-01 is the earliest time a zip entry can hold; any fixed value makes archives reproducible.
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_EXCLUDED_PARTS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_EXCLUDED_SUFFIXES = (".pyc", ".pyo")
BUILD_COMMAND = ".venv/bin/python -m components.packaging build-layer --architecture {architecture}"
POSTGRES_REQUIREMENTS = JOBS_DIR / "requirements-postgres.txt"
POSTGRES_BUILD_COMMAND = ".venv/bin/python -m components.packaging build-postgres-layer --architecture {architecture}"
RDS_CA_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
RDS_CA_BUNDLE_ENTRY = "rds/global-bundle.pem"
"""Where the bundle is in the layer zip; Lambda unpacks layers under /opt."""

# Lambda's quotas: 250 MB unpacked for the function plus all its layers, 50 MB for a zip uploaded directly.
MAX_UNPACKED_BYTES = 250 * 1024 * 1024
MAX_DIRECT_UPLOAD_BYTES = 50 * 1024 * 1024


class LayerNotBuiltError(pulumi.RunError):
    """The dependency layer zip is missing; Pulumi prints the message (with the command) without a traceback."""


@dataclasses.dataclass(frozen=True)
class CodePackage:
    """A zip for Lambda: the Pulumi archive/asset, the hash the provider diffs on, and its sizes."""

    archive: pulumi.Archive
    """The zip as a Pulumi archive (for `Function.code`)."""
    asset: pulumi.Asset
    """The same zip as a file asset (for an S3 object when it is too big to upload directly)."""
    source_code_hash: str
    """Base64 SHA-256 of the zip (function) or of the lock file and platform (layer)."""
    path: Path
    """Where the zip is (or will be, for a layer not built yet)."""
    key: str
    """Short hex content key, usable in S3 keys and names."""
    zipped_bytes: int
    unpacked_bytes: int
    built: bool = True
    """False when a layer is referenced by its key only (offline preview on a fresh clone)."""


def build_dir() -> Path:
    return Path(os.environ.get("ETL_BUILD_DIR") or REPO_ROOT / "build" / "lambda")


# ---------------------------------------------------------------------------------------------------------------------
# Deterministic zips
# ---------------------------------------------------------------------------------------------------------------------


def _included(relative: Path) -> bool:
    return not (_EXCLUDED_PARTS.intersection(relative.parts) or relative.name.endswith(_EXCLUDED_SUFFIXES))


def tree_entries(root: Path, prefix: str = "") -> list[tuple[str, Path]]:
    """(archive name, file) for every file under `root`, sorted, without caches and bytecode."""
    entries = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if path.is_file() and _included(relative):
            entries.append((f"{prefix}{relative.as_posix()}", path))
    return sorted(entries)


def deterministic_zip(entries: Iterable[tuple[str, Path]]) -> bytes:
    """A zip whose bytes depend only on the entries' names and contents (and their executable bit)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, path in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            mode = 0o755 if os.access(path, os.X_OK) and path.suffix in ("", ".so") else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the mode bits are honoured whatever OS built the zip
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _unpacked_size(data: bytes) -> int:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return sum(info.file_size for info in archive.infolist())


def _write_once(path: Path, data: bytes) -> None:
    """Write atomically unless an identical file is already there (keeps mtimes, avoids torn reads)."""
    if path.exists() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as handle:
        handle.write(data)
    os.replace(handle.name, path)


# ---------------------------------------------------------------------------------------------------------------------
# The function archive
# ---------------------------------------------------------------------------------------------------------------------


def function_zip(source: Path = JOBS_DIR) -> bytes:
    """`etl_jobs/` as the top-level package of a zip (handlers import `etl_jobs.*`)."""
    return deterministic_zip(tree_entries(source, prefix=f"{source.name}/"))


def function_package(source: Path = JOBS_DIR, out_dir: Path | None = None) -> CodePackage:
    """The function code: built in milliseconds on every run, written to `build/lambda/function-<key>.zip`."""
    data = function_zip(source)
    digest = hashlib.sha256(data).hexdigest()
    path = (out_dir or build_dir()) / f"function-{digest[:16]}.zip"
    _write_once(path, data)
    return CodePackage(
        archive=pulumi.FileArchive(str(path)),
        asset=pulumi.FileAsset(str(path)),
        source_code_hash=_sha256_b64(data),
        path=path,
        key=digest[:16],
        zipped_bytes=len(data),
        unpacked_bytes=_unpacked_size(data),
    )


# ---------------------------------------------------------------------------------------------------------------------
# The dependency layer
# ---------------------------------------------------------------------------------------------------------------------


def layer_key(architecture: LambdaArchitecture, requirements: Path = LAYER_REQUIREMENTS) -> str:
    """Content key of the layer: the pinned requirements, the platform tags and the Python version."""
    material = "\n".join(
        [requirements.read_text(), *_PLATFORM_TAGS[architecture], LAYER_PYTHON_VERSION, "layer-format-1"]
    )
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def layer_paths(architecture: LambdaArchitecture, out_dir: Path | None = None) -> tuple[Path, Path]:
    """(cache directory holding wheels/ and python/, zip) of the layer for this architecture."""
    base = (out_dir or build_dir()) / "layers"
    key = layer_key(architecture)
    return base / f"{architecture.value}-{key}", base / f"{architecture.value}-{key}.zip"


def _running_under_mocks() -> bool:
    from pulumi.runtime.mocks import MockMonitor
    from pulumi.runtime.settings import get_monitor

    return isinstance(get_monitor(), MockMonitor)


def layer_package(architecture: LambdaArchitecture, out_dir: Path | None = None) -> CodePackage:
    """The dependency layer for the Lambda platform; never built here.

    When the zip is missing: under the mocks (offline preview, tests) and in `pulumi preview`, the layer is referred
    to by its key with a placeholder asset; in `pulumi up` a `LayerNotBuiltError` names the command to run.
    """
    key = layer_key(architecture)
    _, path = layer_paths(architecture, out_dir)
    command = BUILD_COMMAND.format(architecture=architecture.value)
    return _prebuilt(path, key, command, f"the Lambda dependency layer for {architecture.value}")


def _prebuilt(
    path: Path,
    key: str,
    command: str,
    what: str,
    *,
    error: type[pulumi.RunError] = LayerNotBuiltError,
    placeholder_name: str = "python/LAYER_NOT_BUILT.txt",
) -> CodePackage:
    """A zip built outside the program, or, when missing, a placeholder (mocks, preview) or an error (up)."""
    source_code_hash = base64.b64encode(hashlib.sha256(key.encode()).digest()).decode()
    if path.exists():
        return CodePackage(
            archive=pulumi.FileArchive(str(path)),
            asset=pulumi.FileAsset(str(path)),
            source_code_hash=source_code_hash,
            path=path,
            key=key,
            zipped_bytes=path.stat().st_size,
            unpacked_bytes=_unpacked_size(path.read_bytes()),
        )
    mocked = _running_under_mocks()
    if not mocked and not pulumi.runtime.is_dry_run():
        raise error(
            f"{what} is not built ({path} is missing); "
            f"run `{command}` first (it downloads wheels once into {path.parent})"
        )
    if not mocked:
        pulumi.log.warn(f"{what} ({path.name}) is not built; run `{command}` before `pulumi up`")
    placeholder = f"{key} not built; run {command}\n"
    return CodePackage(
        archive=pulumi.AssetArchive({placeholder_name: pulumi.StringAsset(placeholder)}),
        asset=pulumi.StringAsset(placeholder),
        source_code_hash=source_code_hash,
        path=path,
        key=key,
        zipped_bytes=0,
        unpacked_bytes=0,
        built=False,
    )


# ---------------------------------------------------------------------------------------------------------------------
# The database runner's postgres layer: psycopg and the RDS CA bundle
# ---------------------------------------------------------------------------------------------------------------------


class CaBundleDownloadError(RuntimeError):
    """The RDS CA bundle could not be downloaded (no network, or not a PEM bundle): the message says what to do."""


def postgres_layer_key(architecture: LambdaArchitecture, requirements: Path = POSTGRES_REQUIREMENTS) -> str:
    """Content key of the postgres layer: its pins, the platform, the Python version and where the bundle is from."""
    material = "\n".join(
        [requirements.read_text(), *_PLATFORM_TAGS[architecture], LAYER_PYTHON_VERSION, RDS_CA_BUNDLE_URL,
         "postgres-layer-format-1"]
    )  # fmt: skip
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def postgres_layer_paths(architecture: LambdaArchitecture, out_dir: Path | None = None) -> tuple[Path, Path]:
    base = (out_dir or build_dir()) / "layers"
    name = f"postgres-{architecture.value}-{postgres_layer_key(architecture)}"
    return base / name, base / f"{name}.zip"


def postgres_layer_package(architecture: LambdaArchitecture, out_dir: Path | None = None) -> CodePackage:
    """The postgres layer (see the module docstring); never built here, referred to like the main layer."""
    key = postgres_layer_key(architecture)
    _, path = postgres_layer_paths(architecture, out_dir)
    command = POSTGRES_BUILD_COMMAND.format(architecture=architecture.value)
    return _prebuilt(path, key, command, f"the postgres layer (psycopg, RDS CA bundle) for {architecture.value}")


def fetch_ca_bundle(url: str = RDS_CA_BUNDLE_URL, timeout_seconds: float = 30) -> bytes:
    """The RDS CA bundle's bytes from `url`; a clear error when it cannot be read or is not a PEM bundle."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout_seconds) as response:
            data: bytes = response.read()
    except (urllib.error.URLError, OSError) as error:
        raise CaBundleDownloadError(
            f"cannot download the RDS CA bundle from {url}: {error}. Building the postgres layer needs the network "
            "(the bundle is AWS's and changes as AWS adds certificate authorities); run `make layers` where it can "
            "be reached"
        ) from error
    if not data.lstrip().startswith(b"-----BEGIN CERTIFICATE-----"):
        raise CaBundleDownloadError(f"{url} did not answer with a PEM certificate bundle ({len(data)} bytes)")
    return data


def build_postgres_layer(
    architecture: LambdaArchitecture,
    out_dir: Path | None = None,
    *,
    force: bool = False,
    bundle_url: str = RDS_CA_BUNDLE_URL,
) -> Path:
    """Install the `postgres` export into `python/` as `build_layer` does, add the RDS CA bundle, zip it. The bundle
    is downloaded first, so a build without the network fails before anything is installed."""
    cache, path = postgres_layer_paths(architecture, out_dir)
    if path.exists() and not force:
        return path
    bundle = fetch_ca_bundle(bundle_url)
    target = cache / "python"
    _install(architecture, POSTGRES_REQUIREMENTS, target)
    (cache / RDS_CA_BUNDLE_ENTRY).parent.mkdir(parents=True, exist_ok=True)
    (cache / RDS_CA_BUNDLE_ENTRY).write_bytes(bundle)
    entries = [*_layer_entries(target), (RDS_CA_BUNDLE_ENTRY, cache / RDS_CA_BUNDLE_ENTRY)]
    _write_once(path, deterministic_zip(sorted(entries)))
    return path


# ---------------------------------------------------------------------------------------------------------------------
# The Glue job's zip of wheels
# ---------------------------------------------------------------------------------------------------------------------

GLUE_PYTHON_VERSION = "3.11"
"""Glue 5.1's Python."""
GLUE_PLATFORM_TAGS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64")
"""Glue 5.1 runs on Amazon Linux 2023 (glibc 2.34) on x86_64."""
GLUE_WHEELS_SUFFIX = ".gluewheels.zip"
GLUE_BUILD_COMMAND = ".venv/bin/python -m components.packaging build-glue-wheels"


class GlueWheelsNotBuiltError(pulumi.RunError):
    """The Glue job's zip of wheels is missing; Pulumi prints the message (with the command) without a traceback."""


def glue_wheels_key(requirements: Path = LAYER_REQUIREMENTS) -> str:
    """Content key of the Glue bundle: the pinned requirements, the platform tags and the Python version."""
    material = "\n".join([requirements.read_text(), *GLUE_PLATFORM_TAGS, GLUE_PYTHON_VERSION, "gluewheels-format-1"])
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def glue_wheels_path(out_dir: Path | None = None) -> Path:
    return (out_dir or build_dir()) / "glue" / f"etl-jobs-deps-{glue_wheels_key()}{GLUE_WHEELS_SUFFIX}"


def glue_wheels_package(out_dir: Path | None = None) -> CodePackage:
    """The Glue job's dependencies; never built here. Missing: a placeholder under the mocks and in `pulumi preview`
    (referred to by its key, so previews on a fresh clone register the same resources), an error in `pulumi up`."""
    return _prebuilt(
        glue_wheels_path(out_dir),
        glue_wheels_key(),
        GLUE_BUILD_COMMAND,
        "the Glue job's dependencies",
        error=GlueWheelsNotBuiltError,
        placeholder_name="NOT_BUILT.txt",
    )


def build_glue_wheels(out_dir: Path | None = None, *, force: bool = False) -> Path:
    """Download the hash-checked wheels of the `jobs` export for Glue's platform with pip (run by uv, which has no
    `pip download` of its own), then zip them with the requirements file (what Glue's pip installs, `--no-index`)."""
    from etlctl.lockfiles import find_uv

    path = glue_wheels_path(out_dir)
    if path.exists() and not force:
        return path
    wheels = path.parent / path.name.removesuffix(GLUE_WHEELS_SUFFIX)
    shutil.rmtree(wheels, ignore_errors=True)
    platforms = [arg for tag in GLUE_PLATFORM_TAGS for arg in ("--platform", tag)]
    command = [find_uv(), "tool", "run", "pip", "download", "--quiet", "--dest", str(wheels), "--no-deps",
               "--only-binary", ":all:", "--require-hashes", "--python-version", GLUE_PYTHON_VERSION,
               "--implementation", "cp", *platforms, "-r", str(LAYER_REQUIREMENTS)]  # fmt: skip
    subprocess.run(command, check=True)
    entries = [(file.name, file) for file in sorted(wheels.glob("*.whl"))]
    entries.append(("requirements.txt", LAYER_REQUIREMENTS))
    _write_once(path, deterministic_zip(entries))
    return path


def build_layer(architecture: LambdaArchitecture, out_dir: Path | None = None, *, force: bool = False) -> Path:
    """Install the pinned, hash-checked wheels for the Lambda platform into `python/` with uv, then zip it."""
    cache, path = layer_paths(architecture, out_dir)
    if path.exists() and not force:
        return path
    target = cache / "python"
    _install(architecture, LAYER_REQUIREMENTS, target)
    _write_once(path, deterministic_zip(_layer_entries(target)))
    return path


def _install(architecture: LambdaArchitecture, requirements: Path, target: Path) -> None:
    """The hash-checked wheels of an export, for the Lambda platform, installed into `target` (emptied first)."""
    from etlctl.lockfiles import find_uv

    shutil.rmtree(target, ignore_errors=True)
    # The file is the whole closure (an export of uv.lock), so nothing is resolved: --no-deps. uv keeps the wheels in
    # its cache and writes no bytecode by default (the build host's would be useless on Lambda and differ by host).
    platforms = [arg for tag in _PLATFORM_TAGS[architecture] for arg in ("--python-platform", tag)]
    command = [find_uv(), "pip", "install", "--quiet", "--target", str(target), "--no-deps", "--only-binary",
               ":all:", "--require-hashes", "--python-version", LAYER_PYTHON_VERSION, *platforms,
               "-r", str(requirements)]  # fmt: skip
    subprocess.run(command, check=True)


def _layer_entries(target: Path) -> list[tuple[str, Path]]:
    # Console scripts and uv's lock of the target directory are of no use on Lambda.
    return [
        (name, file)
        for name, file in tree_entries(target, prefix="python/")
        if "/bin/" not in name and name != "python/.lock"
    ]


# ---------------------------------------------------------------------------------------------------------------------
# The Spark job's Python environment (EMR)
# ---------------------------------------------------------------------------------------------------------------------

# Glue 5.1's Python, which the Spark engine is tested with; a python-build-standalone build uv knows how to download.
SPARK_ENV_PYTHON = "3.11.18"
# (uv's platform tag for the wheels, uv's download key platform of the interpreter). EMR 7.x runs Amazon Linux 2023
# (glibc 2.34): manylinux_2_28 wheels fit, as does python-build-standalone (built for older glibc).
_SPARK_ENV_PLATFORMS = {
    LambdaArchitecture.ARM64: ("aarch64-manylinux_2_28", "linux-aarch64-gnu"),
    LambdaArchitecture.X86_64: ("x86_64-manylinux_2_28", "linux-x86_64-gnu"),
}
SPARK_ENV_REQUIREMENTS = LAYER_REQUIREMENTS
SPARK_ENV_BUILD_COMMAND = ".venv/bin/python -m components.packaging build-spark-env --architecture {architecture}"
# Where the interpreter sits inside the archive; Spark unpacks the archive into a directory named by its `#alias`.
SPARK_ENV_PYTHON_PATH = "bin/python3"
# Parts of the interpreter no job imports: the test suite, IDLE, Tk, pip's bootstrap, bytecode.
_SPARK_ENV_EXCLUDED = ("lib/python3.11/test/", "lib/python3.11/idlelib/", "lib/python3.11/tkinter/",
                       "lib/python3.11/ensurepip/", "lib/python3.11/lib2to3/tests/", "share/")  # fmt: skip


class SparkEnvNotBuiltError(pulumi.RunError):
    """The Spark job's environment archive is missing; Pulumi prints the message (with the command) without a
    traceback."""


def spark_env_key(architecture: LambdaArchitecture, requirements: Path = SPARK_ENV_REQUIREMENTS) -> str:
    """Content key of the environment: the pinned requirements, the interpreter version and the platform."""
    material = "\n".join(
        [requirements.read_text(), SPARK_ENV_PYTHON, *_SPARK_ENV_PLATFORMS[architecture], "spark-env-format-1"]
    )
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def spark_env_paths(architecture: LambdaArchitecture, out_dir: Path | None = None) -> tuple[Path, Path]:
    """(cache directory of the interpreter download and the unpacked environment, archive) for this architecture."""
    base = out_dir or build_dir() / "spark-env"
    key = spark_env_key(architecture)
    return base / f"spark-env-{architecture.value}-{key}", base / f"spark-env-{architecture.value}-{key}.tar.gz"


def deterministic_tar_gz(root: Path, *, excluded: Sequence[str] = ()) -> bytes:
    """A tar.gz of the tree under `root` (entries relative to it) whose bytes depend only on names, contents, the
    executable bit and symlink targets: sorted entries, fixed times and owners, no gzip timestamp. Symlinks stay
    symlinks (the interpreter's `bin/python3` is one), which a zip could not keep."""
    paths = sorted(root.rglob("*"))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in paths:
            relative = path.relative_to(root).as_posix()
            shown = relative + ("/" if path.is_dir() and not path.is_symlink() else "")
            if not _included(Path(relative)) or any(shown.startswith(prefix) for prefix in excluded):
                continue
            info = tarfile.TarInfo(relative)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_symlink():
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(path), 0o777
                archive.addfile(info)
            elif path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            else:
                data = path.read_bytes()
                info.size, info.mode = len(data), 0o755 if os.access(path, os.X_OK) else 0o644
                archive.addfile(info, io.BytesIO(data))
    compressed = io.BytesIO()
    with gzip.GzipFile(fileobj=compressed, mode="wb", compresslevel=6, mtime=0, filename="") as stream:
        stream.write(raw.getvalue())
    return compressed.getvalue()


def spark_env_package(architecture: LambdaArchitecture, out_dir: Path | None = None) -> CodePackage:
    """The Spark job's environment archive; never built here (see the module docstring). When it is missing, the
    mocks and `pulumi preview` refer to it by key with a placeholder; `pulumi up` raises `SparkEnvNotBuiltError`."""
    key = spark_env_key(architecture)
    _, path = spark_env_paths(architecture, out_dir)
    digest = base64.b64encode(hashlib.sha256(key.encode()).digest()).decode()
    if path.exists():
        return CodePackage(
            archive=pulumi.FileArchive(str(path)),
            asset=pulumi.FileAsset(str(path)),
            source_code_hash=digest,
            path=path,
            key=key,
            zipped_bytes=path.stat().st_size,
            unpacked_bytes=0,
        )
    command = SPARK_ENV_BUILD_COMMAND.format(architecture=architecture.value)
    mocked = _running_under_mocks()
    if not mocked and not pulumi.runtime.is_dry_run():
        raise SparkEnvNotBuiltError(
            f"the Spark job environment for {architecture.value} is not built ({path} is missing); run `{command}` "
            f"first (it downloads the interpreter and the wheels once into {path.parent})"
        )
    if not mocked:
        pulumi.log.warn(f"Spark environment {path.name} is not built; run `{command}` before `pulumi up`")
    placeholder = f"spark environment {key} not built; run {command}\n"
    return CodePackage(
        archive=pulumi.AssetArchive({"NOT_BUILT.txt": pulumi.StringAsset(placeholder)}),
        asset=pulumi.StringAsset(placeholder),
        source_code_hash=digest,
        path=path,
        key=key,
        zipped_bytes=0,
        unpacked_bytes=0,
        built=False,
    )


def spark_env_commands(architecture: LambdaArchitecture, uv: str, cache: Path) -> list[list[str]]:
    """The uv commands that fetch the interpreter into `cache/python` and install the pinned wheels for the
    platform into `cache/site-packages` (hash-checked, binary only, no resolution: the file is the whole closure)."""
    wheels, interpreter = _SPARK_ENV_PLATFORMS[architecture]
    version = ".".join(SPARK_ENV_PYTHON.split(".")[:2])
    return [
        [uv, "python", "install", f"cpython-{SPARK_ENV_PYTHON}-{interpreter}", "--install-dir", str(cache / "python"),
         "--no-bin"],
        [uv, "pip", "install", "--quiet", "--target", str(cache / "site-packages"), "--no-deps", "--only-binary",
         ":all:", "--require-hashes", "--python-version", version, "--python-platform", wheels,
         "-r", str(SPARK_ENV_REQUIREMENTS)],
    ]  # fmt: skip


def assemble_spark_env(interpreter: Path, site_packages: Path, target: Path) -> Path:
    """The environment tree: the interpreter installation (`bin/`, `lib/python3.11/`) with `site_packages` as its
    site-packages, in `target` (replaced). Returns `target`."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(interpreter, target, symlinks=True)
    version = ".".join(SPARK_ENV_PYTHON.split(".")[:2])
    destination = target / "lib" / f"python{version}" / "site-packages"
    shutil.rmtree(destination, ignore_errors=True)
    shutil.copytree(site_packages, destination, symlinks=True)
    if not (target / SPARK_ENV_PYTHON_PATH).exists():
        raise FileNotFoundError(f"{interpreter} has no {SPARK_ENV_PYTHON_PATH}: not a CPython installation")
    return target


def build_spark_env(architecture: LambdaArchitecture, out_dir: Path | None = None, *, force: bool = False) -> Path:
    """Download the interpreter and the wheels (once), assemble the environment and pack it deterministically."""
    from etlctl.lockfiles import find_uv

    cache, path = spark_env_paths(architecture, out_dir)
    if path.exists() and not force:
        return path
    fetch, install = spark_env_commands(architecture, find_uv(), cache)
    subprocess.run(fetch, check=True)
    shutil.rmtree(cache / "site-packages", ignore_errors=True)
    subprocess.run(install, check=True)
    (installed,) = [d for d in (cache / "python").iterdir() if d.is_dir() and d.name.startswith("cpython-")]
    tree = assemble_spark_env(installed, cache / "site-packages", cache / "environment")
    _write_once(path, deterministic_tar_gz(tree, excluded=_SPARK_ENV_EXCLUDED))
    return path


def describe(package: CodePackage) -> str:
    zipped, unpacked = package.zipped_bytes / 1e6, package.unpacked_bytes / 1e6
    return f"{package.path.name}: {zipped:.1f} MB zipped, {unpacked:.1f} MB unpacked"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.packaging", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build-layer", help="build the dependency layer zip (downloads wheels once)")
    build.add_argument("--architecture", choices=[a.value for a in LambdaArchitecture], action="append")
    build.add_argument("--force", action="store_true", help="rebuild the zip even when it exists")
    postgres = commands.add_parser(
        "build-postgres-layer", help="build the database runner's psycopg + RDS CA bundle layer (needs the network)"
    )
    postgres.add_argument("--architecture", choices=[a.value for a in LambdaArchitecture], action="append")
    postgres.add_argument("--force", action="store_true", help="rebuild (and download the bundle again)")
    glue = commands.add_parser("build-glue-wheels", help="build the Glue job's zip of wheels (downloads once)")
    glue.add_argument("--force", action="store_true", help="rebuild the zip even when it exists")
    spark = commands.add_parser("build-spark-env", help="build the Spark job's environment archive for EMR")
    spark.add_argument("--architecture", choices=[a.value for a in LambdaArchitecture], action="append")
    spark.add_argument("--force", action="store_true", help="rebuild the archive even when it exists")
    commands.add_parser("sizes", help="print the function package and built layer sizes")
    options = parser.parse_args(argv)

    function = function_package()
    if options.command == "build-glue-wheels":
        print(build_glue_wheels(force=options.force))
        return 0
    if options.command == "build-postgres-layer":
        for name in options.architecture or [LambdaArchitecture.ARM64.value]:
            try:
                print(build_postgres_layer(LambdaArchitecture(name), force=options.force))
            except CaBundleDownloadError as error:
                print(f"error: {error}", file=sys.stderr)
                return 1
        return 0
    if options.command == "build-layer":
        for name in options.architecture or [LambdaArchitecture.ARM64.value]:
            build_layer(LambdaArchitecture(name), force=options.force)
    if options.command == "build-spark-env":
        for name in options.architecture or [LambdaArchitecture.ARM64.value]:
            built = build_spark_env(LambdaArchitecture(name), force=options.force)
            print(f"{built.name}: {built.stat().st_size / 1e6:.1f} MB")
        return 0
    print(describe(function))
    for architecture in LambdaArchitecture:
        _, path = layer_paths(architecture)
        if path.exists():
            layer = CodePackage(
                archive=pulumi.FileArchive(str(path)),
                asset=pulumi.FileAsset(str(path)),
                source_code_hash="",
                path=path,
                key=layer_key(architecture),
                zipped_bytes=path.stat().st_size,
                unpacked_bytes=_unpacked_size(path.read_bytes()),
            )
            total = layer.unpacked_bytes + function.unpacked_bytes
            print(f"{describe(layer)}; with the function {total / 1e6:.1f} MB of {MAX_UNPACKED_BYTES / 1e6:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
