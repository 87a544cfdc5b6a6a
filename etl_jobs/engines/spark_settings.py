"""The Spark settings of the orders job, in one place: what Glue, EMR (serverless and cluster), spark-submit here and
the tests run with, so the engine behaves the same on every runner.

- `SPARK_VERSION`: the Spark the engine is written and tested against: Glue 5.1's (Spark 3.5.6, Python 3.11, Java 17),
  pinned as `pyspark==3.5.6` in the `spark` dependency group. EMR must run the same 3.5 line.
- `SETTINGS`: every setting the job relies on. The seeds name adaptive execution, partition coalescing and Kryo;
  the others are what the contract needs from Spark: ANSI mode set explicitly (a cast or an arithmetic overflow
  fails loudly instead of giving a null or a wrapped value; the engine guards every value it parses), UTC as the
  session time zone (order dates are UTC dates), timestamps written as Parquet TIMESTAMP_MICROS (what the Polars
  engine writes and Athena reads; not the legacy INT96), dates and timestamps before 1582/1900 written and read as
  they are (proleptic Gregorian, like Polars and Athena), zstd Parquet.
- `LOCAL`: what a run on one machine adds (`local[2]`, two shuffle partitions, no UI): the tests and benchmarks.
- `session(master=None, extra=None)`: the SparkSession built from these settings. Under spark-submit, Glue or EMR the
  runner has already chosen the master; otherwise (`python -m etl_jobs --engine spark`) it is `local[*]`.
- `submit_arguments(extra)`: the same settings as spark-submit `--conf` arguments (EMR's `sparkSubmitParameters`,
  spark-submit here). Glue does not take `--conf` (its job parameters reserve it): there `session()` applies them
  when the job builds its session, which is also what happens under EMR and here, so `--conf` is belt and braces.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

SPARK_VERSION = "3.5.6"
APP_NAME = "etl-orders"

SETTINGS: Mapping[str, str] = MappingProxyType(
    {
        # Named by the seeds (002/003/004): adaptive query execution, coalescing small shuffle partitions, Kryo.
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.adaptive.coalescePartitions.enabled": "true",
        "spark.serializer": "org.apache.spark.serializer.KryoSerializer",
        # What the contract needs from Spark.
        "spark.sql.ansi.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
        "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
        "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
        "spark.sql.parquet.int96RebaseModeInRead": "CORRECTED",
        "spark.sql.parquet.compression.codec": "zstd",
        # One file per task and partition: the engine decides how many tasks write (one per curated partition).
        "spark.sql.files.maxRecordsPerFile": "0",
        # No _SUCCESS marker beside the files the engine writes to its scratch location and reads back.
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
    }
)

LOCAL: Mapping[str, str] = MappingProxyType(
    {
        "spark.master": "local[2]",
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.log.level": "WARN",
    }
)

# Settings Spark reads only when its context starts; the others can be (and are) set on a running session too.
_STATIC_PREFIXES = ("spark.serializer", "spark.hadoop.", "spark.master", "spark.ui.", "spark.default.parallelism")


def conf(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """SETTINGS with `extra` on top."""
    return {**SETTINGS, **(extra or {})}


def submit_arguments(extra: Mapping[str, str] | None = None) -> list[str]:
    """`--conf KEY=VALUE` arguments for spark-submit (and EMR's sparkSubmitParameters), in a stable order."""
    out: list[str] = []
    for key, value in sorted(conf(extra).items()):
        if key == "spark.master":
            out += ["--master", value]
        else:
            out += ["--conf", f"{key}={value}"]
    return out


def _launched_by_spark() -> bool:
    """True when this Python was started by spark-submit (Glue, EMR, here): the JVM and its master already exist."""
    return bool(os.environ.get("PYSPARK_GATEWAY_PORT"))


def session(master: str | None = None, extra: Mapping[str, str] | None = None) -> Any:
    """The SparkSession of the job, built from SETTINGS (+ `extra`). An existing session is reused; its runtime SQL
    settings are set again, so the engine never runs on Spark defaults (ANSI off, the machine's time zone)."""
    from pyspark.sql import SparkSession

    settings = conf(extra)
    if master:
        settings["spark.master"] = master
    elif not _launched_by_spark() and "spark.master" not in settings:
        settings["spark.master"] = "local[*]"
    builder = SparkSession.builder.appName(APP_NAME)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    for key, value in settings.items():
        if not key.startswith(_STATIC_PREFIXES) and key != "spark.log.level":
            spark.conf.set(key, value)
    return spark
