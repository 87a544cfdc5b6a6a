"""Where the SQL engine's statements run: one adapter interface, `Database`, and its two implementations.

The interface (stable; the SQL engine and `migrate` use nothing else):
- `Database.session()`: a context manager yielding a `Session`: one connection and one transaction, committed when
  the block ends normally, rolled back when it raises, the connection closed either way (an idle connection keeps
  Aurora Serverless v2 from pausing, so none is kept between calls);
- `Session.execute(sql, params)`, `Session.query(sql, params) -> rows`, `Session.copy_in(sql, rows, types)` (binary
  COPY ... FROM STDIN), `Session.copy_in_csv(sql, data)` (COPY ... FROM STDIN with CSV bytes) and
  `Session.copy_out(sql, params) -> bytes` (COPY ... TO STDOUT). Parameters are psycopg's `%(name)s` placeholders.
- `Database.describe()`: where it connects, without secrets (for messages).

The two implementations (both psycopg 3, which is the `postgres` dependency group, never the Lambda layer):
- `LocalDatabase(dsn)`: any PostgreSQL reached with a libpq DSN (`--dsn` or ETL_DATABASE_DSN); what the tests use,
  with COPY where a deployment would otherwise need `aws_s3.table_import_from_s3` / `query_export_to_s3`;
- `AuroraDatabase`: the deployed cluster, from a runner inside the VPC, authenticated with an IAM token (or, for
  `migrate`, with the cluster's Secrets Manager master secret), over TLS verified against the RDS CA bundle
  (sslmode=verify-full). Configured by ETL_DATABASE_HOST, ETL_DATABASE_PORT (5432), ETL_DATABASE_NAME,
  ETL_DATABASE_USER, ETL_DATABASE_SECRET_ARN (optional: the master secret instead of IAM), ETL_DATABASE_CA_BUNDLE
  (the PEM bundle, https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem, shipped with the runner) and
  AWS_REGION.

Why a driver inside the VPC and not the RDS Data API (`rds-data` ExecuteStatement / BatchExecuteStatement with the
cluster ARN and the secret ARN), although the Data API needs no VPC attachment, no driver and no connection care:
- its limits do not fit the contract: a response is at most 1 MiB and a result row at most 64 KB (AWS, "Limitations
  for the Amazon RDS Data API"), while the contract keeps quarantined lines whole up to and beyond 1 MiB
  (`record_too_long`) and a 1M-row file stages about 100 MB of rows, a hundred-odd paged calls each way;
- bytes: COPY carries each line as `bytea` in binary, so NUL bytes and invalid UTF-8 reach the database unchanged;
  the Data API carries them as base64 JSON parameter sets, and bulk loading through it means staging CSV in S3 for
  `aws_s3.table_import_from_s3`, which an engine may not do (the caller owns every object in the lake);
- the tested code is the deployed code: the same driver, wire protocol, COPY and SQL run locally and in AWS; only
  how the connection authenticates differs.
The cost, which the infrastructure carries: the runner runs in the private subnets with a security group the
database admits on 5432; IAM database authentication (`rds-db:connect` on the user, `access_statement` below); TLS
forced by the parameter group; and connections are per call and short, so the cluster can still pause.

What only Aurora can show (tests/jobs/test_postgres_transport.py has marked tests that run against a deployed
cluster and skip without one; the rest is tested against a local PostgreSQL 15 over TLS):
- IAM database authentication: that Aurora accepts the token of a user granted `rds_iam` under the runner role's
  `rds-db:connect` (locally a password stands in for the token);
- TLS forced by `rds.force_ssl` and a server certificate the RDS CA bundle verifies under verify-full;
- auto-pause and resume of Serverless v2: the first connection after a pause takes seconds (CONNECT_TIMEOUT_S), and
  an open connection keeps the cluster from pausing;
- the Data API's behaviour and limits and `aws_s3.table_import_from_s3` / `query_export_to_s3`: not used here
  (see above; COPY through the driver replaces them), so nothing of them is claimed;
- speed at a given ACU range: `benchmarks/postgres.py` measures a local server with durability off.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import psycopg

DEFAULT_PORT = 5432
# Environment of the engine's database (the CLI's --dsn wins over ETL_DATABASE_DSN).
DSN_ENV = "ETL_DATABASE_DSN"
HOST_ENV = "ETL_DATABASE_HOST"
PORT_ENV = "ETL_DATABASE_PORT"
NAME_ENV = "ETL_DATABASE_NAME"
USER_ENV = "ETL_DATABASE_USER"
SECRET_ENV = "ETL_DATABASE_SECRET_ARN"
CA_BUNDLE_ENV = "ETL_DATABASE_CA_BUNDLE"
# Set by a runner built for the RDS Data API (the cluster's ARN), which this code does not speak (see above).
DATA_API_CLUSTER_ENV = "ETL_DB_CLUSTER_ARN"
CONNECT_TIMEOUT_S = 30  # an auto-paused Aurora Serverless v2 takes seconds to resume on the first connection


class DatabaseError(RuntimeError):
    """A failure talking to the database (base class)."""


class DatabaseConfigError(DatabaseError, ValueError):
    """The database settings are missing or contradictory (a usage error: exit code 2)."""


class DatabaseUnavailableError(DatabaseError):
    """The database could not be reached, or the connection broke (an infrastructure error: exit code 4)."""


class DatabasePermissionError(DatabaseError):
    """The database refused the credentials or a privilege (a permission error: exit code 5)."""


class Session(Protocol):
    """One connection in one transaction (see the module docstring)."""

    def execute(self, statement: str, params: Mapping[str, Any] | None = None) -> None: ...

    def query(self, statement: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]: ...

    def copy_in(self, statement: str, rows: Iterable[Sequence[Any]], types: Sequence[str]) -> None: ...

    def copy_in_csv(self, statement: str, data: bytes) -> None: ...

    def copy_out(self, statement: str, params: Mapping[str, Any] | None = None) -> bytes: ...


class Database(Protocol):
    def session(self) -> AbstractContextManager[Session]: ...

    def describe(self) -> str: ...


# --- the psycopg session both implementations use -------------------------------------------------------------------


def _translate(error: Exception, where: str) -> Exception:
    """A psycopg error as one of ours when it is about the database's availability or permissions; else unchanged
    (an SQL error in the engine's own statements is a bug and keeps its traceback)."""
    import psycopg
    from psycopg import errors

    if isinstance(error, errors.InsufficientPrivilege | errors.InvalidAuthorizationSpecification):
        return DatabasePermissionError(f"{where}: {error}".strip())
    refused = getattr(error, "sqlstate", None) in {"28P01", "28000"} or "authentication failed" in str(error)
    if isinstance(error, errors.InvalidPassword) or (isinstance(error, psycopg.OperationalError) and refused):
        return DatabasePermissionError(f"{where}: the database refused the credentials: {error}".strip())
    if isinstance(error, errors.InvalidCatalogName):
        return DatabaseConfigError(f"{where}: {error}".strip())
    if isinstance(error, errors.AdminShutdown | errors.CannotConnectNow | errors.ConnectionException):
        return DatabaseUnavailableError(f"{where}: {error}".strip())
    if isinstance(error, psycopg.OperationalError) and not isinstance(error, psycopg.errors.QueryCanceled):
        return DatabaseUnavailableError(f"{where}: {error}".strip())
    return error


class _PsycopgSession:
    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    def execute(self, statement: str, params: Mapping[str, Any] | None = None) -> None:
        self._connection.execute(statement, params)  # type: ignore[arg-type]

    def query(self, statement: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self._connection.execute(statement, params).fetchall()  # type: ignore[arg-type]

    def copy_in(self, statement: str, rows: Iterable[Sequence[Any]], types: Sequence[str]) -> None:
        with self._connection.cursor().copy(statement) as copy:  # type: ignore[arg-type]
            copy.set_types(list(types))
            for row in rows:
                copy.write_row(row)

    def copy_in_csv(self, statement: str, data: bytes) -> None:
        with self._connection.cursor().copy(statement) as copy:  # type: ignore[arg-type]
            view = memoryview(data)
            for start in range(0, len(view), 1 << 20):
                copy.write(view[start : start + (1 << 20)])

    def copy_out(self, statement: str, params: Mapping[str, Any] | None = None) -> bytes:
        chunks = []
        with self._connection.cursor().copy(statement, params) as copy:  # type: ignore[arg-type]
            for chunk in copy:
                chunks.append(bytes(chunk))
        return b"".join(chunks)


@dataclass(frozen=True)
class _PsycopgDatabase:
    """Connects with psycopg using the keyword arguments `_connect_kwargs` returns (fresh on every session)."""

    def _connect_kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    @contextmanager
    def session(self) -> Iterator[Session]:
        try:
            import psycopg
        except ImportError as error:  # pragma: no cover - the runtime without the postgres group
            raise DatabaseConfigError(
                "the postgres engine needs psycopg (the `postgres` dependency group: uv sync --group postgres)"
            ) from error
        where = f"database {self.describe()}"
        try:
            connection = psycopg.connect(
                **self._connect_kwargs(), connect_timeout=CONNECT_TIMEOUT_S, application_name="etl_jobs"
            )
        except psycopg.Error as error:
            raise _translate(error, f"cannot connect to {where}") from error
        try:
            with connection.transaction():
                yield _PsycopgSession(connection)
        except psycopg.Error as error:
            raise _translate(error, where) from error
        finally:
            connection.close()


@dataclass(frozen=True)
class LocalDatabase(_PsycopgDatabase):
    """A PostgreSQL reached with a libpq DSN (`postgresql://user@host:port/db` or `host=... dbname=...`)."""

    dsn: str

    def _connect_kwargs(self) -> dict[str, Any]:
        return {"conninfo": self.dsn}

    def describe(self) -> str:
        from psycopg.conninfo import conninfo_to_dict

        try:
            parts = conninfo_to_dict(self.dsn)
        except Exception:  # a malformed DSN: say so without echoing it (it may hold a password)
            return "(unparsable DSN)"
        name = parts.get("dbname") or parts.get("user") or "(default)"
        return f"{name} on {parts.get('host') or 'local socket'}:{parts.get('port') or DEFAULT_PORT}"


def _generate_iam_token(host: str, port: int, user: str, region: str) -> str:
    import boto3

    client = boto3.client("rds", region_name=region)
    token: str = client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user, Region=region)
    return token


def _secret_credentials(secret_arn: str, region: str) -> tuple[str, str]:
    import json

    import boto3

    value = boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=secret_arn)
    secret = json.loads(value["SecretString"])
    return str(secret["username"]), str(secret["password"])


@dataclass(frozen=True)
class AuroraDatabase(_PsycopgDatabase):
    """The deployed Aurora PostgreSQL cluster from inside the VPC: IAM authentication (a token generated locally from
    the runner's credentials, valid 15 minutes for opening a connection) or the Secrets Manager master secret, and
    TLS verified against `ca_bundle`."""

    host: str
    dbname: str
    region: str
    ca_bundle: str
    user: str | None = None
    secret_arn: str | None = None
    port: int = DEFAULT_PORT
    token_generator: Any = field(default=_generate_iam_token, compare=False, repr=False)
    secret_reader: Any = field(default=_secret_credentials, compare=False, repr=False)

    def __post_init__(self) -> None:
        if bool(self.user) == bool(self.secret_arn):
            raise DatabaseConfigError(
                f"set exactly one of {USER_ENV} (IAM authentication, the runners) and {SECRET_ENV} "
                "(the cluster's Secrets Manager master secret, for migrate)"
            )

    def _connect_kwargs(self) -> dict[str, Any]:
        if self.secret_arn:
            user, password = self.secret_reader(self.secret_arn, self.region)
        else:
            assert self.user is not None
            user, password = self.user, self.token_generator(self.host, self.port, self.user, self.region)
        return {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": user,
            "password": password,
            "sslmode": "verify-full",
            "sslrootcert": self.ca_bundle,
        }

    def describe(self) -> str:
        who = self.user or f"the master user of {self.secret_arn}"
        return f"{self.dbname} on {self.host}:{self.port} as {who}"


def access_statement(region: str, account: str, cluster_resource_id: str, user: str) -> dict[str, Any]:
    """The IAM statement a runner needs to open connections as `user` (IAM database authentication). The resource
    names the cluster's resource id (`cluster-ABC...`), not its name; with `migrate` on the master secret the role
    needs secretsmanager:GetSecretValue on that secret instead (and kms:Decrypt on its key)."""
    return {
        "Effect": "Allow",
        "Action": ["rds-db:connect"],
        "Resource": [f"arn:aws:rds-db:{region}:{account}:dbuser:{cluster_resource_id}/{user}"],
    }


def from_environment(dsn: str | None = None, environ: Mapping[str, str] | None = None) -> Database:
    """The engine's database: `dsn` (the CLI's --dsn), else ETL_DATABASE_DSN, else the Aurora settings
    (ETL_DATABASE_HOST and the rest, see the module docstring). A clear error names what is missing."""
    env = os.environ if environ is None else environ
    dsn = dsn or env.get(DSN_ENV) or None
    host = env.get(HOST_ENV) or None
    if dsn and host:
        raise DatabaseConfigError(
            f"both a DSN (--dsn or {DSN_ENV}) and {HOST_ENV} are set; give one: a DSN for a PostgreSQL you reach "
            f"with a password, or {HOST_ENV} with IAM authentication for the deployed cluster"
        )
    if dsn:
        return LocalDatabase(dsn)
    if not host and env.get(DATA_API_CLUSTER_ENV):
        raise DatabaseConfigError(
            f"{DATA_API_CLUSTER_ENV} is set, but the postgres engine does not reach the database through the RDS "
            f"Data API (its COPY and size limits do not fit the contract, see etl_jobs.database): run it inside the "
            f"VPC and set {HOST_ENV}, {NAME_ENV}, {USER_ENV}, {CA_BUNDLE_ENV} and AWS_REGION (or give --dsn)"
        )
    if not host:
        raise DatabaseConfigError(
            "the postgres engine needs a database: give --dsn postgresql://USER@HOST:PORT/DB (or set "
            f"{DSN_ENV}), or set {HOST_ENV}, {NAME_ENV}, {USER_ENV}, {CA_BUNDLE_ENV} and AWS_REGION for the "
            "deployed cluster"
        )
    missing = [name for name in (NAME_ENV, CA_BUNDLE_ENV) if not env.get(name)]
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if not region:
        missing.append("AWS_REGION")
    if missing:
        raise DatabaseConfigError(f"{HOST_ENV} is set but {', '.join(missing)} is not; set them as well")
    port_text = env.get(PORT_ENV) or str(DEFAULT_PORT)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise DatabaseConfigError(f"{PORT_ENV}={port_text!r} is not a port number; use e.g. {DEFAULT_PORT}")
    ca_bundle = env[CA_BUNDLE_ENV]
    if not os.path.isfile(ca_bundle):
        raise DatabaseConfigError(
            f"{CA_BUNDLE_ENV}={ca_bundle} is not a file; ship the RDS CA bundle (global-bundle.pem) with the runner"
        )
    assert region is not None
    return AuroraDatabase(
        host=host,
        dbname=env[NAME_ENV],
        region=region,
        ca_bundle=ca_bundle,
        user=env.get(USER_ENV) or None,
        secret_arn=env.get(SECRET_ENV) or None,
        port=int(port_text),
    )
