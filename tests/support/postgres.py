"""A PostgreSQL server the test suite starts itself, for the SQL engine (`--engine postgres`).

`running_postgres()` yields a `PostgresServer`: a fresh cluster (`initdb`, UTF8, trust authentication on 127.0.0.1)
in a temporary directory, started with `pg_ctl` on a free port and stopped (and removed) at the end. The binaries
come from PATH or Debian's `/usr/lib/postgresql/<version>/bin`; when there are none and the suite runs as root with
apt, Debian's `postgresql` package is installed first (as the container tests install docker.io). `initdb` refuses
to run as root, so as root the cluster belongs to the `postgres` user and the tools run through `runuser`.
Durability is off (fsync, synchronous_commit, full_page_writes): a throwaway server only needs to be fast. It has
the `rds_iam` role RDS has in every cluster (`create_rds_roles`), which the runner role's migration is granted.
It also speaks TLS with a certificate for 127.0.0.1 from a throwaway CA (`server.ca_bundle`), and admits
`PASSWORD_ROLE` only over TLS with a password, as Aurora admits an IAM-authenticated user with its token: the
deployed transport (`etl_jobs.database.AuroraDatabase`, sslmode=verify-full) is tested against it.

`server.database(name)` creates a database (once) and returns its DSN; `ENGINE_DATABASE` is the one the engine
tests share, migrated once per session (every engine call works in temporary tables of its own transaction, so
tests sharing it never see each other's rows). `server.environment()` is what a `python -m etl_jobs --engine
postgres` process needs (ETL_DATABASE_DSN). Raises `PostgresUnavailable` (the fixture skips with it) when no server
can be had here.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from etl_jobs.database import DSN_ENV, LocalDatabase

ENGINE_DATABASE = "etl"
SYSTEM_USER = "postgres"
TOOLS = ("initdb", "pg_ctl", "postgres")
# A role that may connect only over TLS with a password (the stand-in for an IAM-authenticated database user).
PASSWORD_ROLE = "etl_runner_tls"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def find_bin_dir() -> Path | None:
    """Where initdb, pg_ctl and postgres are: PATH first, then the newest Debian /usr/lib/postgresql/N/bin."""
    found = [shutil.which(tool) for tool in TOOLS]
    if all(found):
        return Path(os.path.realpath(str(found[0]))).parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    for folder in candidates:
        if all((folder / tool).exists() for tool in TOOLS):
            return folder
    return None


def ensure_bin_dir() -> Path:
    folder = find_bin_dir()
    if folder is not None:
        return folder
    if not _is_root() or shutil.which("apt-get") is None:
        raise PostgresUnavailable("PostgreSQL is not installed, and installing it needs root and apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True, timeout=600)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"],
        env=env,
        check=True,
        capture_output=True,
        timeout=1200,
    )
    folder = find_bin_dir()
    if folder is None:
        raise PostgresUnavailable("installed Debian's postgresql but found no initdb/pg_ctl/postgres")
    return folder


class PostgresServer:
    def __init__(self, bin_dir: Path, root: Path) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.data = root / "data"
        self.port = _free_port()
        self.host = "127.0.0.1"
        self.user = SYSTEM_USER if _is_root() else pwd.getpwuid(os.getuid()).pw_name
        self._created: set[str] = set()

    def _run(self, *argv: str, timeout: float = 120) -> None:
        command = [str(self.bin_dir / argv[0]), *argv[1:]]
        if _is_root():
            command = ["runuser", "-u", SYSTEM_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise PostgresUnavailable(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")

    @property
    def ca_bundle(self) -> Path:
        return self.root / "ca.pem"

    def _write_tls_files(self) -> None:
        """A throwaway CA and a server certificate for 127.0.0.1 signed by it (key readable by the server only)."""
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etl test CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.host)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(self.host))]), False)
            .sign(ca_key, hashes.SHA256())
        )
        self.ca_bundle.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        (self.root / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file = self.root / "server.key"
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        key_file.chmod(0o600)
        if _is_root():
            for name in ("server.crt", "server.key"):
                shutil.chown(self.root / name, SYSTEM_USER, SYSTEM_USER)

    def start(self) -> None:
        if _is_root():
            shutil.chown(self.root, SYSTEM_USER, SYSTEM_USER)
        self._run("initdb", "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8", "--locale=C")
        self._write_tls_files()
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"hostssl all {PASSWORD_ROLE} {self.host}/32 scram-sha-256\n"
            f"host all {PASSWORD_ROLE} {self.host}/32 reject\n"
            f"host all all {self.host}/32 trust\n"
        )
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.root}",
                f"-c listen_addresses={self.host}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=50",
                "-c ssl=on",
                f"-c ssl_cert_file={self.root / 'server.crt'}",
                f"-c ssl_key_file={self.root / 'server.key'}",
            ]
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"), "-w", "start")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def create_rds_roles(self) -> None:
        """The roles RDS and Aurora have in every cluster and the migrations rely on: `rds_iam` (membership means
        "authenticates with an IAM token"), created here without any privilege, as RDS has it."""
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as connection:
            if not connection.execute("SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam'").fetchone():
                connection.execute("CREATE ROLE rds_iam NOLOGIN")

    def dsn(self, database: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={database}"

    def database(self, name: str) -> str:
        """The DSN of database `name`, created on first use."""
        if name not in self._created:
            import psycopg

            with psycopg.connect(self.dsn(), autocommit=True) as connection:
                exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
                if not exists:
                    connection.execute(f'CREATE DATABASE "{name}"')
            self._created.add(name)
        return self.dsn(name)

    def environment(self, database: str = ENGINE_DATABASE) -> dict[str, str]:
        """What a process running the postgres engine needs: its database's DSN."""
        return {DSN_ENV: self.dsn(database)}

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A started server whose ENGINE_DATABASE is migrated; stopped and removed at the end."""
    bin_dir = ensure_bin_dir()
    root = Path(tempfile.mkdtemp(prefix="etl-postgres-"))
    server = PostgresServer(bin_dir, root)
    try:
        server.start()
        server.create_rds_roles()
        from etl_jobs.engines.postgres_migrations import migrate

        migrate(LocalDatabase(server.database(ENGINE_DATABASE)))
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)
