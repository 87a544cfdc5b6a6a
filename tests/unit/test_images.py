"""components/images.py: the content-hash tag and Docker's .dockerignore rules."""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path

import pytest

from components.images import (
    REPO_ROOT,
    DockerIgnore,
    context_files,
    context_hash,
    parse_dockerignore,
    stage_context,
    write_context_tar,
)
from tests.support.pulumi_docker import context_digest

ARGS = {"BASE_IMAGE": "example/python:3.12-slim"}


def make_context(root: Path, ignore: str = "") -> Path:
    files = {
        "Dockerfile": "FROM scratch\nCOPY app /app\n",
        "app/main.py": "print('hi')\n",
        "app/lib/util.py": "X = 1\n",
        "docs/notes.md": "notes\n",
        "build/out.bin": "binary\n",
    }
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    if ignore:
        (root / ".dockerignore").write_text(ignore)
    return root


def tag(root: Path, args: dict[str, str] | None = None, platform: str = "linux/amd64") -> str:
    return context_hash(root, "Dockerfile", ARGS if args is None else args, platform)


class TestContextHash:
    def test_stable_for_an_untouched_context(self, tmp_path: Path) -> None:
        root = make_context(tmp_path, "docs\n")
        first = tag(root)
        # A touch changes only the mtime, which must not count.
        os.utime(root / "app/main.py", (time.time() + 100, time.time() + 100))
        assert tag(root) == first
        assert len(first) == 16
        assert int(first, 16) >= 0

    def test_same_on_another_checkout(self, tmp_path: Path) -> None:
        one = make_context(tmp_path / "one", "docs\n")
        two = make_context(tmp_path / "two", "docs\n")
        assert tag(one) == tag(two)

    def test_changes_when_a_context_file_changes(self, tmp_path: Path) -> None:
        root = make_context(tmp_path, "docs\n")
        before = tag(root)
        (root / "app/lib/util.py").write_text("X = 2\n")
        assert tag(root) != before

    def test_changes_when_a_file_is_added_or_renamed(self, tmp_path: Path) -> None:
        root = make_context(tmp_path, "docs\n")
        before = tag(root)
        (root / "app/lib/util.py").rename(root / "app/lib/util2.py")
        renamed = tag(root)
        (root / "app/new.py").write_text("")
        assert len({before, renamed, tag(root)}) == 3

    def test_changes_with_the_executable_bit(self, tmp_path: Path) -> None:
        root = make_context(tmp_path)
        before = tag(root)
        (root / "app/main.py").chmod(0o755)
        assert tag(root) != before

    def test_ignores_non_executable_mode_bits(self, tmp_path: Path) -> None:
        root = make_context(tmp_path)
        before = tag(root)
        (root / "app/main.py").chmod(0o600)  # a different umask on another machine
        assert tag(root) == before

    def test_unchanged_when_an_ignored_file_changes(self, tmp_path: Path) -> None:
        root = make_context(tmp_path, "docs\nbuild/\n")
        before = tag(root)
        (root / "docs/notes.md").write_text("edited\n")
        (root / "build/out.bin").write_text("rebuilt\n")
        (root / "docs/new.md").write_text("new\n")
        assert tag(root) == before

    def test_changes_when_the_ignore_file_or_dockerfile_changes(self, tmp_path: Path) -> None:
        root = make_context(tmp_path, "docs\n")
        before = tag(root)
        (root / ".dockerignore").write_text("docs\n# a comment still changes the rules file\n")
        after_ignore = tag(root)
        (root / "Dockerfile").write_text("FROM scratch\nCOPY app /srv\n")
        assert len({before, after_ignore, tag(root)}) == 3

    def test_ignored_dockerfile_still_counts(self, tmp_path: Path) -> None:
        root = make_context(tmp_path, "Dockerfile\n")
        before = tag(root)
        (root / "Dockerfile").write_text("FROM scratch\n")
        assert tag(root) != before

    def test_changes_with_a_build_arg(self, tmp_path: Path) -> None:
        root = make_context(tmp_path)
        assert tag(root, {"BASE_IMAGE": "a"}) != tag(root, {"BASE_IMAGE": "b"})
        assert tag(root, {"BASE_IMAGE": "a"}) != tag(root, {"BASE_IMAGE": "a", "EXTRA": ""})
        # Arg order must not matter.
        assert tag(root, {"A": "1", "B": "2"}) == tag(root, {"B": "2", "A": "1"})

    def test_name_value_boundaries_cannot_collide(self, tmp_path: Path) -> None:
        root = make_context(tmp_path)
        assert tag(root, {"AB": "C"}) != tag(root, {"A": "BC"})

    def test_changes_with_the_platform(self, tmp_path: Path) -> None:
        root = make_context(tmp_path)
        assert tag(root, platform="linux/amd64") != tag(root, platform="linux/arm64")

    def test_symlink_hashed_by_target(self, tmp_path: Path) -> None:
        root = make_context(tmp_path)
        (root / "app/link.py").symlink_to("main.py")
        before = tag(root)
        (root / "app/link.py").unlink()
        (root / "app/link.py").symlink_to("lib/util.py")
        assert tag(root) != before

    def test_dockerfile_specific_ignore_file_wins(self, tmp_path: Path) -> None:
        root = make_context(tmp_path, "docs\n")
        (root / "Dockerfile.dockerignore").write_text("*\n!app\n")
        assert context_files(root, "Dockerfile") == ["app/lib/util.py", "app/main.py"]
        before = tag(root)
        (root / "build/out.bin").write_text("ignored by the Dockerfile-specific file only\n")
        assert tag(root) == before

    def test_length(self, tmp_path: Path) -> None:
        root = make_context(tmp_path)
        assert len(context_hash(root, "Dockerfile", ARGS, length=64)) == 64


class TestEtlImageContext:
    def test_context_is_only_the_package_and_the_pins(self) -> None:
        files = context_files(REPO_ROOT, "containers/etl/Dockerfile")
        outside = [f for f in files if not f.startswith("etl_jobs/")]
        assert outside == []
        assert "etl_jobs/requirements.txt" in files
        assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)

    def test_tar_holds_exactly_the_hashed_files_plus_build_files(self, tmp_path: Path) -> None:
        root = make_context(tmp_path, "*\n!app\n")
        buffer = io.BytesIO()
        names = write_context_tar(root, "Dockerfile", buffer)
        buffer.seek(0)
        with tarfile.open(fileobj=buffer) as tar:
            members = tar.getmembers()
        assert sorted(m.name for m in members) == names
        assert names == [".dockerignore", "Dockerfile", "app/lib/util.py", "app/main.py"]
        assert {(m.uid, m.gid, m.mtime) for m in members} == {(0, 0, 0)}

    def test_tar_is_reproducible(self, tmp_path: Path) -> None:
        root = make_context(tmp_path, "docs\n")
        first, second = io.BytesIO(), io.BytesIO()
        write_context_tar(root, "Dockerfile", first)
        os.utime(root / "app/main.py", (1, 1))
        write_context_tar(root, "Dockerfile", second)
        assert first.getvalue() == second.getvalue()


def excluded(patterns: str, path: str) -> bool:
    return DockerIgnore.from_text(patterns).excluded(path)


class TestDockerIgnoreRules:
    def test_patterns_are_anchored_at_the_root_unlike_gitignore(self) -> None:
        assert excluded("*.pyc\n", "a.pyc")
        assert not excluded("*.pyc\n", "pkg/a.pyc")
        assert not excluded("notes\n", "docs/notes")

    def test_double_star_matches_any_depth_including_none(self) -> None:
        assert excluded("**/*.pyc\n", "a.pyc")
        assert excluded("**/*.pyc\n", "pkg/sub/a.pyc")
        assert excluded("pkg/**/test_*.py\n", "pkg/test_a.py")
        assert excluded("pkg/**/test_*.py\n", "pkg/x/y/test_a.py")
        assert not excluded("pkg/**/test_*.py\n", "other/test_a.py")
        assert excluded("pkg/**\n", "pkg/x/y")

    def test_single_star_and_question_mark_stop_at_slashes(self) -> None:
        assert not excluded("pkg/*.py\n", "pkg/sub/a.py")
        assert excluded("pkg/*.py\n", "pkg/a.py")
        assert excluded("pkg/?.py\n", "pkg/a.py")
        assert not excluded("pkg/?.py\n", "pkg/ab.py")

    def test_a_directory_excludes_everything_under_it(self) -> None:
        assert excluded("build\n", "build/deep/file.bin")
        assert excluded("build/\n", "build/deep/file.bin")  # trailing slash is cleaned away
        assert not excluded("build\n", "builder/file")

    def test_exception_reincludes_and_last_match_wins(self) -> None:
        rules = "*.md\n!README.md\n"
        assert excluded(rules, "CHANGES.md")
        assert not excluded(rules, "README.md")
        assert excluded("!README.md\n*.md\n", "README.md")

    def test_exception_reaches_inside_an_excluded_directory(self) -> None:
        # gitignore cannot re-include a file whose parent directory is excluded; Docker can.
        rules = "*\n!containers/etl/requirements.txt\n"
        assert not excluded(rules, "containers/etl/requirements.txt")
        assert excluded(rules, "containers/etl/Dockerfile")
        assert excluded(rules, "containers/other/requirements.txt")

    def test_re_exclusion_after_an_exception(self) -> None:
        rules = "*\n!app\n**/__pycache__\n"
        assert not excluded(rules, "app/main.py")
        assert excluded(rules, "app/__pycache__/main.cpython-311.pyc")
        assert excluded(rules, "docs/x")

    def test_leading_slash_dot_segments_and_comments(self) -> None:
        assert parse_dockerignore("# comment\n\n  /docs/  \n!/keep\n./a/../b\n \t\n") == ["docs", "!keep", "b"]
        assert excluded("/docs\n", "docs/x")
        # `#` only starts a comment in the first column.
        assert parse_dockerignore(" #x\n") == ["#x"]

    def test_regex_specials_are_literal(self) -> None:
        assert excluded("a+b(c).txt\n", "a+b(c).txt")
        assert not excluded("a.txt\n", "abtxt")
        assert excluded("[ab].txt\n", "a.txt")
        assert not excluded("[!ab].txt\n", "a.txt")
        assert excluded("[!ab].txt\n", "c.txt")
        assert excluded("x\\*y\n", "x*y")
        assert not excluded("x\\*y\n", "xzy")

    def test_pruning_never_skips_a_directory_an_exception_could_reach(self) -> None:
        ignore = DockerIgnore.from_text("*\n!containers/etl/requirements.txt\n!**/keep.txt\n")
        assert ignore.may_include_under("containers")
        assert ignore.may_include_under("anything")  # the `**` exception could match anywhere
        narrow = DockerIgnore.from_text("*\n!etl_jobs\n")
        assert not narrow.may_include_under(".venv")
        assert narrow.may_include_under("etl_jobs")

    def test_walk_finds_files_reincluded_deep_inside_excluded_dirs(self, tmp_path: Path) -> None:
        root = make_context(tmp_path, "*\n!**/util.py\n")
        assert context_files(root) == ["app/lib/util.py"]

    @pytest.mark.parametrize(
        ("pattern", "path", "expected"),
        [
            ("**", "anything/at/all", True),
            ("**/", "x", True),
            ("a/**/b", "a/b", True),
            ("a/**/b", "a/x/y/b/c", True),
            ("*/b", "a/b", True),
            ("*/b", "a/c/b", False),
        ],
    )
    def test_table(self, pattern: str, path: str, expected: bool) -> None:
        assert excluded(pattern + "\n", path) is expected


class TestStagedContext:
    """What pulumi-docker hashes (tests/support/pulumi_docker.py) decides whether it rebuilds and pushes under the
    same tag, which an IMMUTABLE repository refuses. The staged copy makes that digest follow the tag."""

    def two_checkouts(self, tmp_path: Path) -> tuple[Path, Path]:
        laptop, ci = make_context(tmp_path / "laptop"), make_context(tmp_path / "ci")
        for path in ci.rglob("*"):
            if path.is_file():
                path.chmod(0o664)  # another umask: group-writable, as a CI checkout may be
        return laptop, ci

    def test_another_umask_changes_what_pulumi_docker_hashes_in_the_checkout(self, tmp_path: Path) -> None:
        laptop, ci = self.two_checkouts(tmp_path)
        assert tag(laptop) == tag(ci)
        assert context_digest(str(laptop), str(laptop / "Dockerfile")) != context_digest(
            str(ci), str(ci / "Dockerfile")
        )

    def test_the_staged_copies_hash_the_same_for_pulumi_docker_so_nothing_is_rebuilt(self, tmp_path: Path) -> None:
        laptop, ci = self.two_checkouts(tmp_path)
        staged = [
            stage_context(root, "Dockerfile", tag(root), "app", out_dir=tmp_path / f"staged-{root.name}")
            for root in (laptop, ci)
        ]
        digests = {context_digest(str(path), str(path / "Dockerfile")) for path in staged}
        assert len(digests) == 1

    def test_a_content_change_moves_both_the_digest_and_the_tag(self, tmp_path: Path) -> None:
        root = make_context(tmp_path / "context")
        before = stage_context(root, "Dockerfile", tag(root), "app", out_dir=tmp_path / "staged")
        (root / "app" / "main.py").write_text("print('changed')\n")
        after = stage_context(root, "Dockerfile", tag(root), "app", out_dir=tmp_path / "staged")
        assert after != before
        assert context_digest(str(after), str(after / "Dockerfile")) != context_digest(
            str(before), str(before / "Dockerfile")
        )

    def test_the_copy_holds_exactly_the_hashed_files_with_normalised_modes(self, tmp_path: Path) -> None:
        root = make_context(tmp_path / "context", ignore="docs\nbuild\n")
        (root / "app" / "run.sh").write_text("#!/bin/sh\n")
        (root / "app" / "run.sh").chmod(0o775)
        (root / "app" / "main.py").chmod(0o600)
        staged = stage_context(root, "Dockerfile", tag(root), "app", out_dir=tmp_path / "staged")
        assert context_files(staged, "Dockerfile") == sorted({*context_files(root, "Dockerfile"), "Dockerfile"})
        modes = {p.relative_to(staged).as_posix(): p.stat().st_mode & 0o7777 for p in staged.rglob("*") if p.is_file()}
        assert modes["app/run.sh"] == 0o755 and modes["app/main.py"] == 0o644 and modes["Dockerfile"] == 0o644

    def test_every_other_input_pulumi_docker_diffs_on_moves_the_tag(self, tmp_path: Path) -> None:
        root = make_context(tmp_path)
        base = {"builderVersion": "BuilderBuildKit", "buildOnPreview": "false", "skipPush": "false"}
        tags = {context_hash(root, "Dockerfile", ARGS, "linux/arm64", extra=base)}
        for key, value in (("buildOnPreview", "true"), ("builderVersion", "BuilderV1"), ("skipPush", "true")):
            tags.add(context_hash(root, "Dockerfile", ARGS, "linux/arm64", extra={**base, key: value}))
        assert len(tags) == 4
