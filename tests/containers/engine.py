"""A Docker engine and an offline base image for the container tests.

`ensure_engine()` returns an `Engine` whose `docker(...)` runs the CLI against a working daemon:
1. the ambient one (`DOCKER_HOST` or the default socket) when `docker info` answers;
2. else, when running as root, a private `dockerd` started from Debian's `docker.io` (installed with apt when
   missing) with its data, exec root and socket under `CACHE_DIR`, so a second run on the same machine reuses the
   image and layer cache. The daemon is left running on purpose (like a system service) so the next run is warm;
   `python -m tests.containers.engine stop` stops it.
Otherwise it raises `EngineUnavailable` with the reason, and the tests skip with it.

`ensure_base_image()` builds `etl-base:bookworm` from Debian with debootstrap (no image registry is reachable from
CI or dev boxes here), so the Dockerfile's `BASE_IMAGE` build arg can point at it. It is cached in the daemon.

The private daemon runs with `--bridge=none --iptables=false`: it must not touch the host's firewall or network, so
builds and containers use `--network host` (builds reach PyPI, containers reach the moto server on 127.0.0.1).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CACHE_DIR = Path(os.environ.get("ETL_DOCKER_CACHE", "/var/cache/etl-platform-docker"))
BASE_IMAGE_REPOSITORY = "etl-base"
# Extra CAs the host trusts (e.g. a TLS-intercepting egress proxy in CI): the base image must trust them too, or pip
# cannot reach PyPI during the build. Test infrastructure only; the production base image is untouched.
HOST_EXTRA_CAS = Path("/usr/local/share/ca-certificates")
# What the builder stage needs from the base: an interpreter, venv + ensurepip (pip comes from its bundled wheel),
# and CA certificates so pip can reach PyPI over TLS.
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
APT_PACKAGES = {"dockerd": "docker.io", "debootstrap": "debootstrap"}


class EngineUnavailable(RuntimeError):
    """No Docker engine can be used or started here; the message says why."""


@dataclass(frozen=True)
class Engine:
    """How to reach a working Docker daemon."""

    docker_host: str | None
    started_here: bool = False
    env: dict[str, str] = field(default_factory=dict, compare=False)

    def environment(self) -> dict[str, str]:
        env = {**os.environ, **self.env}
        if self.docker_host:
            env["DOCKER_HOST"] = self.docker_host
        return env

    def docker(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 900,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["docker", *args],
            env=self.environment(),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"docker {' '.join(args[:3])} ... exited {result.returncode}\n"
                f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
            )
        return result

    def docker_bytes(self, *args: str, stdin: bytes, timeout: float = 900) -> subprocess.CompletedProcess[bytes]:
        """Like `docker`, for binary stdin (a build context tarball)."""
        return subprocess.run(
            ["docker", *args], input=stdin, env=self.environment(), capture_output=True, timeout=timeout, check=False
        )

    def image_exists(self, ref: str) -> bool:
        return self.docker("image", "inspect", ref, check=False).returncode == 0


def _answers(docker_host: str | None) -> bool:
    if shutil.which("docker") is None:
        return False
    env = dict(os.environ)
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    try:
        result = subprocess.run(["docker", "info"], env=env, capture_output=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _apt_install(packages: list[str]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True, timeout=600)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        env=env,
        check=True,
        capture_output=True,
        timeout=1200,
    )


def ensure_tools() -> None:
    """Install dockerd and debootstrap with apt when missing (root only)."""
    missing = [package for binary, package in APT_PACKAGES.items() if shutil.which(binary) is None]
    if not missing:
        return
    if not _is_root():
        raise EngineUnavailable(f"missing {', '.join(missing)} and not root, so they cannot be installed with apt")
    if shutil.which("apt-get") is None:
        raise EngineUnavailable(f"missing {', '.join(missing)} and no apt-get to install them")
    _apt_install(missing)


def private_socket() -> str:
    return f"unix://{CACHE_DIR / 'docker.sock'}"


def _start_private_daemon(timeout: float = 90) -> Engine:
    host = private_socket()
    if _answers(host):
        return Engine(docker_host=host)
    ensure_tools()
    for sub in ("data", "exec"):
        (CACHE_DIR / sub).mkdir(parents=True, exist_ok=True)
    log = (CACHE_DIR / "dockerd.log").open("ab")
    process = subprocess.Popen(
        [
            "dockerd",
            # No bridge, no iptables: the daemon must leave the host's network and firewall alone.
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            f"--data-root={CACHE_DIR / 'data'}",
            f"--exec-root={CACHE_DIR / 'exec'}",
            f"--pidfile={CACHE_DIR / 'dockerd.pid'}",
            f"--host={host}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        # Its own session: it outlives the test run on purpose (warm cache), and Ctrl-C on pytest does not kill it.
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (CACHE_DIR / "dockerd.log").read_text(errors="replace")[-3000:]
            raise EngineUnavailable(f"dockerd exited with {process.returncode}:\n{tail}")
        if _answers(host):
            return Engine(docker_host=host, started_here=True)
        time.sleep(0.5)
    raise EngineUnavailable(f"dockerd did not answer on {host} within {timeout}s; see {CACHE_DIR / 'dockerd.log'}")


def ensure_engine() -> Engine:
    ambient = os.environ.get("DOCKER_HOST")
    if _answers(ambient):
        return Engine(docker_host=ambient)
    if not _is_root():
        raise EngineUnavailable("no Docker engine answers `docker info` and not root, so none can be started")
    if shutil.which("docker") is None:
        ensure_tools()  # docker.io ships the CLI too
    return _start_private_daemon()


def debian_mirror() -> str:
    """The Debian mirror this machine's apt already uses (it is reachable; others may not be)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for source in sources:
        try:
            text = source.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            # deb822 ("URIs: http://deb.debian.org/debian") and one-line ("deb [opts] URI suite ...") formats.
            candidates = words[1:] if words[:1] in (["URIs:"], ["deb"]) else []
            for word in candidates:
                if word.startswith("http") and word.rstrip("/").endswith("/debian"):
                    return word.rstrip("/")
    return DEFAULT_MIRROR


def _host_cas() -> list[Path]:
    return sorted(HOST_EXTRA_CAS.rglob("*.crt")) if HOST_EXTRA_CAS.is_dir() else []


def base_image_ref(suite: str = "bookworm") -> str:
    """Tagged by what goes into it: a changed package list or CA set builds a new base, never reuses a stale one."""
    digest = hashlib.sha256(",".join(BASE_PACKAGES).encode())
    for ca in _host_cas():
        digest.update(ca.read_bytes())
    return f"{BASE_IMAGE_REPOSITORY}:{suite}-{digest.hexdigest()[:8]}"


def _trust_host_cas(rootfs: Path) -> None:
    cas = _host_cas()
    if not cas:
        return
    target = rootfs / "usr/local/share/ca-certificates"
    target.mkdir(parents=True, exist_ok=True)
    for ca in cas:
        shutil.copy2(ca, target / ca.name)
    subprocess.run(["chroot", str(rootfs), "update-ca-certificates"], check=True, capture_output=True, timeout=120)
    # pip (<24.2, as in bookworm's ensurepip) uses certifi rather than the system store unless told otherwise.
    (rootfs / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")


def ensure_base_image(engine: Engine, suite: str = "bookworm") -> str:
    """A minimal Debian image with python3 + venv, imported into the daemon once."""
    ref = base_image_ref(suite)
    if engine.image_exists(ref):
        return ref
    ensure_tools()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR, prefix="rootfs-") as rootfs:
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                suite,
                rootfs,
                debian_mirror(),
            ],
            check=True,
            capture_output=True,
            timeout=1200,
        )
        _trust_host_cas(Path(rootfs))
        # apt lists and caches are not needed at runtime; they only add size.
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            target = Path(rootfs) / junk
            if target.is_dir():
                for child in target.glob("*.deb"):
                    child.unlink()
        tar = subprocess.Popen(["tar", "-C", rootfs, "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["docker", "import", "-", ref],
            stdin=tar.stdout,
            env=engine.environment(),
            capture_output=True,
            timeout=600,
            check=False,
        )
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise RuntimeError(f"docker import failed: {imported.stderr.decode(errors='replace')}")
    return ref


def stop_private_daemon() -> bool:
    pid_file = CACHE_DIR / "dockerd.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().strip())
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        return False
    return True


if __name__ == "__main__":
    if sys.argv[1:] == ["stop"]:
        print("stopped" if stop_private_daemon() else "not running")
    else:
        started = time.monotonic()
        found = ensure_engine()
        print(f"engine: {found.docker_host or 'default'} ({time.monotonic() - started:.1f}s)")
        started = time.monotonic()
        print(f"base image: {ensure_base_image(found)} ({time.monotonic() - started:.1f}s)")
