-- The login role the deployed stage runners use (components/architectures/database.py: RUNNER_USER): it connects
-- with an IAM authentication token (membership in `rds_iam`, which RDS and Aurora create in every cluster) and holds
-- exactly what the engine's stage and merge calls use: the schema (and with it the functions, which PostgreSQL lets
-- PUBLIC execute), the version check (`etl.schema_migrations`), the accounting rows each call inserts (and the
-- columns its INSERT ... RETURNING reads back), and temporary tables (every call computes in tables of its own
-- transaction). No CREATE, no UPDATE or DELETE, no other table: the schema changes only through `migrate`, which runs
-- as the master user.
--
-- Additive and idempotent: a role belongs to the whole cluster, not to one database, so it may exist already (another
-- database of the cluster, or a database restored from a snapshot); GRANT of a privilege held is a no-op.
-- Never edited once released (add 0003_... instead).

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rds_iam') THEN
        RAISE EXCEPTION 'role "rds_iam" does not exist: the runner role authenticates through it'
            USING HINT = 'RDS and Aurora create it in every cluster; on another PostgreSQL create it first: '
                         'CREATE ROLE rds_iam NOLOGIN';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'etl_runner') THEN
        CREATE ROLE etl_runner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
    END IF;
    -- TEMPORARY on this database, whatever its name.
    EXECUTE format('GRANT TEMPORARY, CONNECT ON DATABASE %I TO etl_runner', current_database());
END $$;

GRANT rds_iam TO etl_runner;
GRANT USAGE ON SCHEMA etl TO etl_runner;
GRANT SELECT ON etl.schema_migrations TO etl_runner;
GRANT INSERT ON etl.stage_accounting, etl.merge_accounting TO etl_runner;
-- What the accounting INSERTs return (etl_jobs/sql/stage/07_accounting.sql, merge/08_accounting.sql): RETURNING
-- needs SELECT on the columns it names, and on those only.
GRANT SELECT (rows_in, rows_valid, reasons) ON etl.stage_accounting TO etl_runner;
GRANT SELECT (landing_source, landing_seq, rows_current, rows_superseded) ON etl.merge_accounting TO etl_runner;
