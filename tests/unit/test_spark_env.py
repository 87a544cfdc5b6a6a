"""The Spark job's Python environment for EMR (`components.packaging`): its content key, the deterministic archive
(symlinks kept, the interpreter executable), the commands that build it, and the placeholder under the mocks.
Downloading the interpreter (python-build-standalone, through uv) needs the network this suite does not have; the
build is `make spark-env`."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from components import packaging
from components.settings import LambdaArchitecture

ARM64, X86 = LambdaArchitecture.ARM64, LambdaArchitecture.X86_64


def test_key_follows_the_requirements_and_the_platform(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("polars==1.0.0\n")
    first = packaging.spark_env_key(ARM64, requirements)
    assert first == packaging.spark_env_key(ARM64, requirements)
    assert first != packaging.spark_env_key(X86, requirements)
    requirements.write_text("polars==1.0.1\n")
    assert packaging.spark_env_key(ARM64, requirements) != first


def _interpreter(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "lib" / "python3.11" / "test").mkdir(parents=True)
    binary = root / "bin" / "python3.11"
    binary.write_bytes(b"\x7fELF fake interpreter")
    binary.chmod(0o755)
    (root / "bin" / "python3").symlink_to("python3.11")
    (root / "lib" / "python3.11" / "os.py").write_text("# stdlib\n")
    (root / "lib" / "python3.11" / "test" / "test_big.py").write_text("# not shipped\n")
    return root


def test_archive_is_deterministic_and_keeps_the_interpreter_runnable(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "polars").mkdir(parents=True)
    (site / "polars" / "__init__.py").write_text("version = '1'\n")
    tree = packaging.assemble_spark_env(_interpreter(tmp_path / "python"), site, tmp_path / "environment")
    excluded = ("lib/python3.11/test/",)
    data = packaging.deterministic_tar_gz(tree, excluded=excluded)
    os.utime(tree / "lib" / "python3.11" / "os.py", (1, 1))  # mtimes do not matter
    assert packaging.deterministic_tar_gz(tree, excluded=excluded) == data
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = {m.name: m for m in archive.getmembers()}
    assert members["bin/python3"].issym() and members["bin/python3"].linkname == "python3.11"
    assert members["bin/python3.11"].mode == 0o755
    assert "lib/python3.11/site-packages/polars/__init__.py" in members
    assert not [name for name in members if name.startswith("lib/python3.11/test")]
    assert packaging.SPARK_ENV_PYTHON_PATH in members


def test_assembling_refuses_a_tree_without_an_interpreter(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "site").mkdir()
    with pytest.raises(FileNotFoundError, match="has no bin/python3: not a CPython installation"):
        packaging.assemble_spark_env(tmp_path / "empty", tmp_path / "site", tmp_path / "out")


def test_build_commands_fetch_the_platforms_interpreter_and_hash_checked_wheels(tmp_path: Path) -> None:
    fetch, install = packaging.spark_env_commands(ARM64, "uv", tmp_path)
    assert fetch[:4] == ["uv", "python", "install", f"cpython-{packaging.SPARK_ENV_PYTHON}-linux-aarch64-gnu"]
    assert packaging.SPARK_ENV_PYTHON.startswith("3.11.")
    for flag in ("--require-hashes", "--no-deps"):
        assert flag in install
    assert install[install.index("--python-platform") + 1] == "aarch64-manylinux_2_28"
    assert install[install.index("-r") + 1] == str(packaging.SPARK_ENV_REQUIREMENTS)


def test_missing_archive_is_referred_to_by_key_under_the_mocks(tmp_path: Path) -> None:
    import pulumi

    from tests.support.components import register

    found: list[packaging.CodePackage] = []
    register(lambda: found.append(packaging.spark_env_package(ARM64, tmp_path)))
    (package,) = found
    assert package.built is False and package.key == packaging.spark_env_key(ARM64)
    assert isinstance(package.asset, pulumi.StringAsset)
