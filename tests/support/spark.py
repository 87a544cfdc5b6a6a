"""The Spark of the tests: one local SparkSession for the whole test session, with the job's settings
(`etl_jobs.engines.spark_settings.SETTINGS`) and `LOCAL` on top (local[2], two shuffle partitions, no UI), created
on first use and reused by every test and every engine instance (the engine takes the active session).

Time budget of the Spark tests (tests/jobs/test_spark_*.py and the shared suites' `spark` cases): see
tests/jobs/test_spark_engine.py."""

from __future__ import annotations

import threading
from typing import Any

from etl_jobs import spark_job
from etl_jobs.engines import spark_settings
from etl_jobs.zones import Zones

_LOCK = threading.Lock()
_SESSION: Any = None


def local_session() -> Any:
    """The test session's SparkSession (created once)."""
    global _SESSION
    with _LOCK:
        if _SESSION is None:
            _SESSION = spark_settings.session(extra=spark_settings.LOCAL)
        return _SESSION


# What tests/jobs/test_spark_job.py runs with spark-submit: a transform, with Glue's own arguments appended as Glue does.
RUN_DATE = "2024-05-04"
GLUE_OWN = ["--JOB_NAME", "orders-transform", "--job-bookmark-option", "job-bookmark-disable", "--enable-metrics", ""]


def job_arguments_tested(zones: Zones, result_uri: str) -> list[str]:
    """The job argument vector the spark-submit test ran (`spark_job.job_arguments` of its transform call): a Glue or
    EMR component's rendered arguments for a transform must equal it with its own zone and result URIs."""
    return spark_job.job_arguments(
        "transform",
        RUN_DATE,
        result_uri=result_uri,
        zones={"raw": zones.raw, "staged": zones.staged, "curated": zones.curated, "quarantine": zones.quarantine},
    )
