"""The SQL engine's transport (etl_jobs.database): where the database comes from, the local implementation, and the
deployed one (AuroraDatabase) against the session's PostgreSQL over TLS verified against a CA bundle, with a token
as the password (the stand-in for IAM database authentication) or the master secret from Secrets Manager (moto).
What only Aurora can show is in the tests at the end, which run only against a deployed cluster.

Time budget: about 5 s on this 2-core machine (one server for the session; two CLI processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from etl_jobs.database import (
    AuroraDatabase,
    DatabaseConfigError,
    DatabasePermissionError,
    DatabaseUnavailableError,
    LocalDatabase,
    _generate_iam_token,
    access_statement,
    from_environment,
)
from tests.support.moto_server import MotoServer
from tests.support.postgres import ENGINE_DATABASE, PASSWORD_ROLE, PostgresServer, _free_port

TOKEN = "a-token-as-rds-generates-it?Action=connect&X-Amz-Signature=abc"
REPO = Path(__file__).resolve().parents[2]


def aurora_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    bundle = tmp_path / "global-bundle.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    env = {
        "ETL_DATABASE_HOST": "orders.cluster-abc.eu-west-1.rds.amazonaws.com",
        "ETL_DATABASE_NAME": "etl",
        "ETL_DATABASE_USER": "etl_runner",
        "ETL_DATABASE_CA_BUNDLE": str(bundle),
        "AWS_REGION": "eu-west-1",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v}


@pytest.fixture(scope="module")
def tls_role(postgres_server: PostgresServer) -> str:
    """The role that connects only over TLS with TOKEN as its password (idempotent across the session)."""
    with psycopg.connect(postgres_server.dsn(ENGINE_DATABASE), autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (PASSWORD_ROLE,)).fetchone():
            connection.execute(f"CREATE ROLE {PASSWORD_ROLE} LOGIN")
        connection.execute(f"ALTER ROLE {PASSWORD_ROLE} PASSWORD '{TOKEN}'")
    return PASSWORD_ROLE


def deployed(server: PostgresServer, **kwargs: Any) -> AuroraDatabase:
    settings: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "dbname": ENGINE_DATABASE,
        "region": "eu-west-1",
        "ca_bundle": str(server.ca_bundle),
        "user": PASSWORD_ROLE,
        "token_generator": lambda host, port, user, region: TOKEN,
    }
    settings.update(kwargs)
    return AuroraDatabase(**settings)


# --- where the database comes from ---------------------------------------------------------------------------------


def test_a_dsn_is_a_local_database_described_without_its_password() -> None:
    database = from_environment(None, {"ETL_DATABASE_DSN": "postgresql://etl:s3cret@db.internal:6543/orders"})
    assert database == LocalDatabase("postgresql://etl:s3cret@db.internal:6543/orders")
    assert database.describe() == "orders on db.internal:6543"


def test_the_command_line_dsn_wins_over_the_environment() -> None:
    database = from_environment("host=a dbname=x", {"ETL_DATABASE_DSN": "host=b dbname=y"})
    assert database == LocalDatabase("host=a dbname=x")


def test_the_aurora_settings_make_an_iam_authenticated_tls_connection(tmp_path: Path) -> None:
    env = aurora_env(tmp_path, ETL_DATABASE_PORT="6432")
    database = from_environment(None, env)
    assert isinstance(database, AuroraDatabase)
    calls = []
    generator = lambda *args: calls.append(args) or TOKEN  # noqa: E731
    kwargs = AuroraDatabase(**{**database.__dict__, "token_generator": generator})._connect_kwargs()
    assert kwargs == {
        "host": env["ETL_DATABASE_HOST"],
        "port": 6432,
        "dbname": "etl",
        "user": "etl_runner",
        "password": TOKEN,
        "sslmode": "verify-full",
        "sslrootcert": env["ETL_DATABASE_CA_BUNDLE"],
    }
    assert calls == [(env["ETL_DATABASE_HOST"], 6432, "etl_runner", "eu-west-1")]
    assert database.describe() == f"etl on {env['ETL_DATABASE_HOST']}:6432 as etl_runner"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {},
            "the postgres engine needs a database: give --dsn postgresql://USER@HOST:PORT/DB (or set ETL_DATABASE_DSN), or set ETL_DATABASE_HOST, ETL_DATABASE_NAME, ETL_DATABASE_USER, ETL_DATABASE_CA_BUNDLE and AWS_REGION for the deployed cluster",
        ),
        (
            {"ETL_DB_CLUSTER_ARN": "arn:aws:rds:eu-west-1:111122223333:cluster:orders", "ETL_DATABASE_HOST": ""},
            "ETL_DB_CLUSTER_ARN is set, but the postgres engine does not reach the database through the RDS Data API",
        ),
        (
            {"ETL_DATABASE_DSN": "host=x", "ETL_DATABASE_HOST": "y"},
            "both a DSN (--dsn or ETL_DATABASE_DSN) and ETL_DATABASE_HOST are set; give one",
        ),
        (
            {"ETL_DATABASE_NAME": "", "AWS_REGION": ""},
            "ETL_DATABASE_HOST is set but ETL_DATABASE_NAME, AWS_REGION is not; set them as well",
        ),
        ({"ETL_DATABASE_PORT": "5432x"}, "ETL_DATABASE_PORT='5432x' is not a port number; use e.g. 5432"),
        (
            {"ETL_DATABASE_CA_BUNDLE": "/nowhere/global-bundle.pem"},
            "ETL_DATABASE_CA_BUNDLE=/nowhere/global-bundle.pem is not a file; ship the RDS CA bundle",
        ),
        (
            {"ETL_DATABASE_USER": ""},
            "set exactly one of ETL_DATABASE_USER (IAM authentication, the runners) and ETL_DATABASE_SECRET_ARN",
        ),
        (
            {"ETL_DATABASE_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:x"},
            "set exactly one of ETL_DATABASE_USER",
        ),
    ],
)
def test_settings_that_cannot_work_are_usage_errors_naming_them(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    settings = {} if not env else aurora_env(tmp_path, **env)
    with pytest.raises(DatabaseConfigError) as raised:
        from_environment(None, settings)
    assert message in str(raised.value)


def test_the_default_token_is_a_presigned_rds_db_connect_for_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 signs the token locally (no call to AWS): what Aurora checks against rds-db:connect on the user."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    token = _generate_iam_token("orders.cluster-abc.eu-west-1.rds.amazonaws.com", 5432, "etl_runner", "eu-west-1")
    parts = urlsplit("https://" + token)
    query = parse_qs(parts.query)
    assert parts.netloc == "orders.cluster-abc.eu-west-1.rds.amazonaws.com:5432"
    assert query["Action"] == ["connect"] and query["DBUser"] == ["etl_runner"]
    assert query["X-Amz-Credential"][0].endswith("/eu-west-1/rds-db/aws4_request")
    assert query["X-Amz-Expires"] == ["900"]


def test_the_runner_grant_is_rds_db_connect_on_the_user_only() -> None:
    assert access_statement("eu-west-1", "111122223333", "cluster-ABCDEF", "etl_runner") == {
        "Effect": "Allow",
        "Action": ["rds-db:connect"],
        "Resource": ["arn:aws:rds-db:eu-west-1:111122223333:dbuser:cluster-ABCDEF/etl_runner"],
    }


# --- the deployed implementation against a real server -------------------------------------------------------------


def test_the_deployed_transport_connects_over_verified_tls_with_its_token(
    postgres_server: PostgresServer, tls_role: str
) -> None:
    calls = []
    database = deployed(postgres_server, token_generator=lambda *args: calls.append(args) or TOKEN)
    with database.session() as session:
        rows = session.query("SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert rows == [(tls_role, True)]
    assert calls == [(postgres_server.host, postgres_server.port, tls_role, "eu-west-1")]


def test_verify_full_refuses_a_server_the_bundle_does_not_vouch_for(
    postgres_server: PostgresServer, tls_role: str, tmp_path: Path
) -> None:
    other = PostgresServer(postgres_server.bin_dir, tmp_path)
    other._write_tls_files()  # another CA, which did not sign the server's certificate
    with (
        pytest.raises(DatabaseUnavailableError) as raised,
        deployed(postgres_server, ca_bundle=str(other.ca_bundle)).session(),
    ):
        pass
    assert "failed: SSL error" in str(raised.value)  # the certificate does not verify against that bundle


def test_a_refused_token_is_a_permission_error(postgres_server: PostgresServer, tls_role: str) -> None:
    with (
        pytest.raises(DatabasePermissionError) as raised,
        deployed(postgres_server, token_generator=lambda *args: "an-expired-token").session(),
    ):
        pass
    assert str(raised.value).startswith(
        f"cannot connect to database etl on {postgres_server.host}:{postgres_server.port} as {tls_role}: "
        "the database refused the credentials"
    )


def test_migrate_can_use_the_master_secret_from_secrets_manager(
    postgres_server: PostgresServer, tls_role: str, moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    moto_server.reset()
    for name, value in moto_server.client_environment().items():
        monkeypatch.setenv(name, value)
    import boto3

    secrets = boto3.client("secretsmanager", region_name="eu-west-1")
    arn = secrets.create_secret(
        Name="rds!cluster-abc", SecretString=f'{{"username": "{tls_role}", "password": "{TOKEN}"}}'
    )["ARN"]
    database = deployed(postgres_server, user=None, secret_arn=arn, token_generator=None)
    assert database.describe().endswith(f"as the master user of {arn}")
    with database.session() as session:
        assert session.query("SELECT current_user") == [(tls_role,)]


# --- the local implementation ------------------------------------------------------------------------------------


def test_a_session_commits_at_the_end_and_rolls_back_on_an_error(postgres_server: PostgresServer) -> None:
    database = LocalDatabase(postgres_server.database("transport_sessions"))
    with database.session() as session:
        session.execute("CREATE TABLE IF NOT EXISTS kept (n integer)")
        session.execute("TRUNCATE kept")
        session.execute("INSERT INTO kept VALUES (1)")
    with pytest.raises(ZeroDivisionError), database.session() as session:
        session.execute("INSERT INTO kept VALUES (2)")
        raise ZeroDivisionError
    with database.session() as session:
        assert session.query("SELECT n FROM kept") == [(1,)]


def test_copy_moves_bytes_and_rows_both_ways(postgres_server: PostgresServer) -> None:
    database = LocalDatabase(postgres_server.database(ENGINE_DATABASE))
    hostile = b'O1,C\x00\xff\xfe,\r\n"x'
    with database.session() as session:
        session.execute("CREATE TEMPORARY TABLE t (n integer, raw bytea, note text) ON COMMIT DROP")
        session.copy_in("COPY t (n, raw) FROM STDIN (FORMAT binary)", [(1, hostile)], ["int4", "bytea"])
        session.copy_in_csv("COPY t (n, note) FROM STDIN (FORMAT csv)", b'2,"a ""quoted"", text"\n3,\n')
        assert session.query("SELECT n, raw, note FROM t ORDER BY n") == [
            (1, hostile, None),
            (2, None, 'a "quoted", text'),
            (3, None, None),
        ]
        assert session.copy_out("COPY (SELECT n FROM t WHERE n > %(least)s ORDER BY n) TO STDOUT", {"least": 1}) == (
            b"2\n3\n"
        )


def test_each_session_is_its_own_connection_so_threads_share_a_database(postgres_server: PostgresServer) -> None:
    database = LocalDatabase(postgres_server.database(ENGINE_DATABASE))
    seen: list[int] = []

    def one() -> None:
        with database.session() as session:
            session.execute("CREATE TEMPORARY TABLE private (n integer) ON COMMIT DROP")
            seen.append(session.query("SELECT pg_backend_pid()")[0][0])

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 3


def _cli(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    return subprocess.run(
        [sys.executable, "-m", "etl_jobs", *argv],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_unreachable_database_is_an_infrastructure_error_naming_it(tmp_path: Path) -> None:
    port = _free_port()
    source = tmp_path / "orders.csv"
    source.write_bytes(b"order_id,customer_id,order_ts,country,currency,amount,quantity,status\n")
    done = _cli(
        "run", "--engine", "postgres", "--dsn", f"host=127.0.0.1 port={port} dbname=etl connect_timeout=5",
        "--input", str(source), "--output", str(tmp_path / "out"), env={},
    )  # fmt: skip
    assert done.returncode == 4, done.stderr
    assert f"error: cannot connect to database etl on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_user_without_privileges_is_a_permission_error(postgres_server: PostgresServer, tmp_path: Path) -> None:
    with psycopg.connect(postgres_server.dsn(ENGINE_DATABASE), autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_roles WHERE rolname = 'etl_nobody'").fetchone():
            connection.execute("CREATE ROLE etl_nobody LOGIN")
    source = tmp_path / "orders.csv"
    source.write_bytes(b"order_id,customer_id,order_ts,country,currency,amount,quantity,status\n")
    dsn = f"host={postgres_server.host} port={postgres_server.port} user=etl_nobody dbname={ENGINE_DATABASE}"
    done = _cli(
        "run",
        "--engine",
        "postgres",
        "--input",
        str(source),
        "--output",
        str(tmp_path / "out"),
        env={"ETL_DATABASE_DSN": dsn},
    )
    assert done.returncode == 5, done.stderr
    assert "permission denied for schema etl" in done.stderr and "Traceback" not in done.stderr


# --- what only Aurora can show -------------------------------------------------------------------------------------

AURORA = pytest.mark.skipif(
    not os.environ.get("ETL_AURORA_TEST_HOST"),
    reason="needs a deployed Aurora PostgreSQL cluster: set ETL_AURORA_TEST_HOST (with ETL_DATABASE_NAME, "
    "ETL_DATABASE_USER, ETL_DATABASE_CA_BUNDLE, AWS_REGION and credentials allowed rds-db:connect on the user)",
)


def _aurora() -> AuroraDatabase:
    env = {**os.environ, "ETL_DATABASE_HOST": os.environ["ETL_AURORA_TEST_HOST"]}
    env.pop("ETL_DATABASE_DSN", None)
    database = from_environment(None, env)
    assert isinstance(database, AuroraDatabase)
    return database


@AURORA
def test_aurora_accepts_the_iam_token_of_a_user_granted_rds_iam() -> None:
    """AWS: a user granted `rds_iam` authenticates with a token from generate_db_auth_token, valid 15 minutes for
    opening connections (Aurora User Guide, "IAM database authentication")."""
    with _aurora().session() as session:
        ((member,),) = session.query("SELECT pg_has_role(current_user, 'rds_iam', 'member')")
    assert member is True


@AURORA
def test_aurora_forces_tls_and_presents_a_certificate_the_rds_bundle_verifies() -> None:
    """AWS: `rds.force_ssl = 1` in the cluster parameter group refuses connections without TLS; verify-full checks
    the server certificate against the RDS CA bundle and the cluster endpoint's name."""
    with _aurora().session() as session:
        assert session.query("SHOW rds.force_ssl") == [("1",)]
        assert session.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == [(True,)]


@AURORA
def test_aurora_runs_the_migrations_and_a_stage_with_ICU_and_MERGE() -> None:
    """AWS: Aurora PostgreSQL 15+ has ICU collations and MERGE, which the SQL engine's files use."""
    from etl_jobs.engines import Lineage
    from etl_jobs.engines.postgres_engine import PostgresEngine

    engine = PostgresEngine(_aurora())
    engine.migrate()
    staged = engine.stage(b"order_id,customer_id,order_ts,country,currency,amount,quantity,status\n"
                          b"O1,C1,2024-05-01T10:00:00Z,us,usd,1.00,1,PAID\n", Lineage("aurora-check", 1))  # fmt: skip
    assert staged.rows_valid == 1
