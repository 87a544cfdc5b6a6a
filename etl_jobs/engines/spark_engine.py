"""The Spark engine: the orders contract on PySpark's DataFrame API, for Glue and EMR (`--engine spark`), with the
same rows out as the Polars engine (see `etl_jobs.engines` for the protocol; settings in `spark_settings`).

Where the work happens:
- The driver prepares the bytes it is given (gzip, BOM, CR-only line endings, NUL made another control character,
  as the Polars engine does) and makes them valid UTF-8 text: invalid bytes become U+FFFD, with the lines that held
  them remembered (`invalid_utf8`). Only when the file holds a double quote does it read the lines in Python: to find
  records that span lines (the shared `csv_text.open_after`, sequential by nature) and the header when it is quoted.
- Spark does everything per record: splitting lines (`posexplode` of the text: exact physical line numbers), blank
  lines, control characters, field counts, the field rules, cleaning, normalising, enrichment, and the merge (versions
  with a window over order_id, partitions, index, moves, superseded rows). Records holding quotes are parsed by the
  shared `csv_text.parse_quoted` in a Python UDF on the executors (the same `csv` module rules as the Polars engine).
- Values follow the Polars engine exactly, including what its parsers accept: timestamps as chrono parses the two
  formats of `polars_engine._cleaners` (leading whitespace before each number, 1-4 digit or signed years, 1-2 digit
  fields, leap seconds, fractions truncated to microseconds, offsets `Z`, `+HH`, `+HHMM`, `+HH:MM`), integers with an
  optional sign and leading zeros, amounts by the contract's pattern, USD amounts rounded half to even.

Data crosses the protocol as Parquet bytes, so Spark reads and writes Parquet in a scratch location: a local folder
when the master is local, and on a cluster (Glue, EMR) a shared URI every executor reaches (`ETL_SPARK_SCRATCH`,
e.g. an `s3://` prefix: Glue and EMR read s3:// natively), moved in and out through Hadoop's FileSystem. Each call
uses its own folder and removes it. Every Parquet object the engine returns was written by Spark: staged parts and
quarantine rows as one file, each curated partition and its index as one file (the data is repartitioned by
order_date before writing, so each date is written by one task). The commit tag (`etl_commit`) is carried in the
field metadata of `order_id`, which Spark stores in the Parquet footer's key-value metadata
(`org.apache.spark.sql.parquet.row.metadata`): every commit's objects are distinct bytes, as the protocol requires.

Sizes: the protocol publishes one object per partition and the engine keeps it so. A partition above
`PARTITION_TARGET_BYTES` (seed 003 recommends 128 MB to 1 GB files) is logged; splitting it would mean a
`PartitionWrite` of several parts (part-00000 ... part-0000N, written with `maxRecordsPerFile` from the row size)
published together by the commit protocol, with the index listing the part of each order: a protocol change for when
one day of orders outgrows 1 GB. The file a stage reads is held by the driver and split into lines by one task, so one
delivered file must fit in the driver's and one executor's memory (a few times over); records are then spread over
the cluster.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import Window

from etl_jobs.contract import (
    CURATED_COLUMNS,
    FIELD_MAX_CHARS,
    INDEX_COLUMNS,
    INPUT_COLUMNS,
    LINEAGE_COLUMNS,
    ORDER_YEARS,
    QUANTITY_MAX,
    RECORD_MAX_CHARS,
    STATUSES,
    ContractError,
    Reason,
    countries,
    currencies,
    usd_rates,
)
from etl_jobs.contract.orders import AMOUNT_PRECISION, AMOUNT_SCALE, STRUCTURAL_REASONS
from etl_jobs.engines import (
    Lineage,
    MergeResult,
    PartitionWrite,
    StagedFile,
    TableView,
    csv_text,
    open_bytes,
    spark_settings,
)

log = logging.getLogger("etl_jobs")

PARTITION_TARGET_BYTES = 1024 * 1024 * 1024
# Above this many lines a file's records are spread over the cluster's cores after the (single-task) line split.
SPREAD_LINES = 200_000
SCRATCH_ENV = "ETL_SPARK_SCRATCH"

# --- schemas (the protocol's column sets, as Spark types) ---------------------------------------------------------

AMOUNT = T.DecimalType(AMOUNT_PRECISION, AMOUNT_SCALE)
RATE = T.DecimalType(18, 10)
_CONTRACT_TYPES: dict[str, T.DataType] = {
    "order_id": T.StringType(),
    "customer_id": T.StringType(),
    "order_ts": T.TimestampType(),
    "country": T.StringType(),
    "currency": T.StringType(),
    "amount": AMOUNT,
    "amount_usd": AMOUNT,
    "quantity": T.IntegerType(),
    "status": T.StringType(),
    "order_date": T.DateType(),
}
_LINEAGE_TYPES: dict[str, T.DataType] = {
    "landing_source": T.StringType(),
    "landing_seq": T.LongType(),
    "landing_line": T.LongType(),
}


def _struct(columns: dict[str, T.DataType]) -> T.StructType:
    return T.StructType([T.StructField(name, dtype, True) for name, dtype in columns.items()])


VALID = _struct({**{c: _CONTRACT_TYPES[c] for c in CURATED_COLUMNS}, **_LINEAGE_TYPES})
QUARANTINE = _struct(
    {
        "landing_source": T.StringType(),
        "landing_seq": T.LongType(),
        "source_file": T.StringType(),
        "line": T.LongType(),
        "reason": T.StringType(),
        "raw_line": T.StringType(),
        **{c: _CONTRACT_TYPES[c] for c in CURATED_COLUMNS},
    }
)
PARTITION_COLUMNS = [c for c in (*CURATED_COLUMNS, *LINEAGE_COLUMNS) if c != "order_date"]
# As read from a scratch folder of `order_date=D/` sub-folders (partition discovery adds order_date last).
PARTITIONS = _struct({**{c: VALID[c].dataType for c in PARTITION_COLUMNS}, "order_date": T.DateType()})
INDEX = _struct({**{c: VALID[c].dataType for c in INDEX_COLUMNS}, "order_date": T.DateType()})
VERSION_ORDER = ["order_ts", "landing_seq", "landing_source", "landing_line"]

# --- regular expressions (Java syntax) ----------------------------------------------------------------------------

_WS = csv_text.white_space_class()
_NOT_WS = csv_text.white_space_class(negate=True)
_TRIM = f"^{_WS}+|{_WS}+\\z"
_YEAR = r"(?:([+\-])([0-9]+)|([0-9]{1,4}+))"
_TWO = r"([0-9]{1,2}+)"
_DATE_TIME = f"^{_WS}*{_YEAR}-{_WS}*{_TWO}-{_WS}*{_TWO}T{_WS}*{_TWO}:{_WS}*{_TWO}:{_WS}*{_TWO}"
# chrono's `%Y-%m-%dT%H:%M:%SZ` (the Polars engine's fast path), on the raw value.
TS_FAST = _DATE_TIME + r"Z\z"
# chrono's `%Y-%m-%dT%H:%M:%S%.f%#z` or `...%S%.f`, on the value trimmed and with its first space made a `T`.
_SEPARATOR = _WS[:-1] + ":]"
TS_FULL = (
    _DATE_TIME
    + r"(?:\.([0-9]+))?"
    + f"(?:{_WS}*+(?:([Zz])|([+\\-\\x{{2212}}])([0-9]{{2}})(?:{_SEPARATOR}*+([0-5][0-9]))?))?\\z"
)
# The groups both patterns' replacement lists (absent groups are empty): sign, signed year, year, month, day, hour,
# minute, second, fraction, Z, offset sign, offset hours, offset minutes.
_GROUPS = "|".join(f"${i}" for i in range(1, 14))
_GROUPS_FAST = "|".join(f"${i}" for i in range(1, 9)) + "|||||"
AMOUNT_PATTERN = rf"^[0-9]{{1,{AMOUNT_PRECISION - AMOUNT_SCALE}}}(\.[0-9]{{1,{AMOUNT_SCALE}}})?\z"
INTEGER_PATTERN = r"^[+\-]?[0-9]+\z"
LEADING_SIGN_AND_ZEROS = r"^[+\-]?0*"
# chrono's NaiveDate range.
YEAR_MIN, YEAR_MAX = -262144, 262143


class SparkScratchError(ValueError):
    """The Spark engine has no scratch location its executors can all reach (a configuration error)."""


# --- scratch --------------------------------------------------------------------------------------------------------


class _Scratch:
    """Where Parquet and text cross between the driver's bytes and Spark: `uri(rel)` for Spark, `put`/`files`/`remove`
    for the driver."""

    def uri(self, rel: str) -> str:
        raise NotImplementedError

    def put(self, rel: str, data: bytes) -> str:
        raise NotImplementedError

    def files(self, rel: str) -> dict[str, bytes]:
        """Every data file under `rel` (Spark's part files), by path relative to `rel`."""
        raise NotImplementedError

    def remove(self, rel: str) -> None:
        raise NotImplementedError


def _is_data_file(name: str) -> bool:
    return not name.split("/")[-1].startswith((".", "_"))


class LocalScratch(_Scratch):
    """A local folder: the driver and the executors share one file system (a local master)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def uri(self, rel: str) -> str:
        return str(self.root / rel)

    def put(self, rel: str, data: bytes) -> str:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return str(path)

    def files(self, rel: str) -> dict[str, bytes]:
        base = self.root / rel
        if not base.exists():
            return {}
        return {
            p.relative_to(base).as_posix(): p.read_bytes()
            for p in sorted(base.rglob("*"))
            if p.is_file() and _is_data_file(p.relative_to(base).as_posix())
        }

    def remove(self, rel: str) -> None:
        shutil.rmtree(self.root / rel, ignore_errors=True)


class HadoopScratch(_Scratch):
    """A URI on a file system every executor reaches (s3:// on Glue and EMR), through Hadoop's FileSystem API: the
    driver's bytes go there and come back without a client of its own."""

    CHUNK = 8 * 1024 * 1024

    def __init__(self, spark: SparkSession, root: str) -> None:
        self.root = root.rstrip("/")
        jvm = spark.sparkContext._jvm
        assert jvm is not None
        self._jvm = jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr]

    def _path(self, rel: str) -> Any:
        return self._jvm.org.apache.hadoop.fs.Path(self.uri(rel))

    def _fs(self, path: Any) -> Any:
        return path.getFileSystem(self._conf)

    def uri(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def put(self, rel: str, data: bytes) -> str:
        path = self._path(rel)
        out = self._fs(path).create(path, True)
        try:
            for start in range(0, len(data), self.CHUNK):
                chunk = data[start : start + self.CHUNK]
                out.write(bytearray(chunk), 0, len(chunk))
        finally:
            out.close()
        return self.uri(rel)

    def files(self, rel: str) -> dict[str, bytes]:
        base = self._path(rel)
        fs = self._fs(base)
        if not fs.exists(base):
            return {}
        prefix = fs.makeQualified(base).toString().rstrip("/") + "/"
        found = fs.listFiles(base, True)
        out: dict[str, bytes] = {}
        while found.hasNext():
            path = found.next().getPath()
            name = path.toString().removeprefix(prefix)
            if not _is_data_file(name):
                continue
            stream = fs.open(path)
            try:
                out[name] = bytes(self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
            finally:
                stream.close()
        return dict(sorted(out.items()))

    def remove(self, rel: str) -> None:
        path = self._path(rel)
        self._fs(path).delete(path, True)


_LOCAL_ROOT: Path | None = None
_LOCAL_LOCK = threading.Lock()


def _local_root() -> Path:
    """One scratch folder per process (each call works in its own sub-folder), removed when the process exits."""
    global _LOCAL_ROOT
    with _LOCAL_LOCK:
        if _LOCAL_ROOT is None:
            _LOCAL_ROOT = Path(tempfile.mkdtemp(prefix="etl-spark-"))
            atexit.register(shutil.rmtree, _LOCAL_ROOT, True)
        return _LOCAL_ROOT


def scratch_for(spark: SparkSession, configured: str | None = None) -> _Scratch:
    """The scratch location: `configured` (or ETL_SPARK_SCRATCH) when set, a local folder under a local master."""
    uri = configured if configured is not None else os.environ.get(SCRATCH_ENV, "")
    uri = uri.strip()
    if uri:
        if "://" not in uri:
            return LocalScratch(Path(uri))
        if uri.startswith("file://"):
            return LocalScratch(Path(uri.removeprefix("file://")))
        return HadoopScratch(spark, uri)
    master = spark.sparkContext.master
    if master.startswith("local"):
        return LocalScratch(_local_root())
    raise SparkScratchError(
        f"the Spark engine runs on a cluster (master {master!r}) but {SCRATCH_ENV} is not set; set it to a location "
        "every executor can read and write, e.g. s3://<staged bucket>/_spark/ (or pass --scratch-uri to "
        "etl_jobs.spark_job)"
    )


# --- the driver's view of the text --------------------------------------------------------------------------------


@dataclass
class _Text:
    """One file as Spark reads it, and what only a sequential scan of its lines can tell."""

    data: bytes  # valid UTF-8, prepared as the Polars engine's splitter sees it
    lines: int  # physical lines
    lossy: bool  # the file held bytes that are not UTF-8 (now U+FFFD)
    quoted: bool = False  # the file holds a double quote somewhere
    genuine: list[int] = field(default_factory=list)  # lines holding U+FFFD that the file really contains
    header_line: int = 0  # 0: no record at all
    header_text: str = ""
    header_bad: bool = False
    multi: list[tuple[int, str, bool, bool]] = field(default_factory=list)  # first line, joined text, bad, control
    continuation: list[tuple[int, int]] = field(default_factory=list)  # line ranges inside multi-line records
    blank_lines: int | None = None  # known when the driver read every line


_PY_NOT_WS = re.compile(csv_text.python_white_space_class(negate=True))
_PY_CONTROL = re.compile(csv_text.CONTROL)


def _split_lines(text: str) -> list[str]:
    """Physical lines as the Polars engine's splitter gives them: split on LF, no empty last line after a final LF,
    one CR before the LF removed."""
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return [p[:-1] if p.endswith("\r") else p for p in parts]


def _analyse(data: bytes) -> _Text:
    data = csv_text.prepare(open_bytes(data))
    if b"\x00" in data:
        data = data.replace(b"\x00", b"\x01")  # as the Polars engine: a NUL line is a control_character line
    try:
        text = data.decode("utf-8")
        lossy = False
    except UnicodeDecodeError:
        text = data.decode("utf-8", "replace")
        lossy = True
    count = data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)
    out = _Text(text.encode() if lossy else data, count, lossy)
    lines: list[str] | None = None
    if lossy and b"\xef\xbf\xbd" in data:
        # Polars' rule: a line holding U+FFFD that appears verbatim in the original bytes is genuine text.
        lines = _split_lines(text)
        out.genuine = [i + 1 for i, line in enumerate(lines) if "\ufffd" in line and line.encode() in data]
    genuine = set(out.genuine)

    def bad(number: int, line: str) -> bool:
        return lossy and "\ufffd" in line and number not in genuine

    out.quoted = b'"' in data
    if out.quoted:
        lines = lines if lines is not None else _split_lines(text)
        _quote_structure(out, lines, bad)
    multi = {first: (joined, is_bad) for first, joined, is_bad, _ in out.multi}
    # The header: the first line that is not blank (nothing before it can be a continuation).
    for number, line in enumerate(_iter_lines(text) if lines is None else iter(lines), start=1):
        if _PY_NOT_WS.search(line):
            out.header_line = number
            out.header_text, out.header_bad = multi.get(number, (line, bad(number, line)))
            break
    if out.header_line == 0:
        out.blank_lines = out.lines  # every line is blank (or there is none)
    return out


def _iter_lines(text: str) -> Iterable[str]:
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        line = text[start:] if end < 0 else text[start:end]
        yield line[:-1] if line.endswith("\r") else line
        if end < 0:
            return
        start = end + 1


def _quote_structure(out: _Text, lines: list[str], bad: Any) -> None:
    """Records that span lines: their first line, joined text and flags, and the lines that continue them."""
    quoted_idx = [i for i, line in enumerate(lines) if '"' in line]
    states = csv_text.open_after([lines[i] for i in quoted_idx])
    if not any(states):
        return
    # A line is open when the last quoted line at or before it left a quoted field open.
    open_lines: list[int] = []
    for k, i in enumerate(quoted_idx):
        if states[k]:
            end = quoted_idx[k + 1] if k + 1 < len(quoted_idx) else len(lines)
            open_lines.extend(range(i, end))
    open_set = set(open_lines)
    members = sorted(open_set | {i + 1 for i in open_lines if i + 1 < len(lines)})
    for i in members:
        number, line = i + 1, lines[i]
        if i - 1 in open_set:
            first, joined, is_bad, control = out.multi[-1]
            out.multi[-1] = (
                first,
                joined + "\n" + line,
                is_bad or bad(number, line),
                control or bool(_PY_CONTROL.search(line)),
            )
            if out.continuation and out.continuation[-1][1] == number - 1:
                out.continuation[-1] = (out.continuation[-1][0], number)
            else:
                out.continuation.append((number, number))
        else:
            out.multi.append((number, line, bad(number, line), bool(_PY_CONTROL.search(line))))


def _rows_in(text: _Text) -> int:
    """Records after the header (for a file refused whole): non-blank lines outside multi-line records, minus one."""
    lines = _split_lines(text.data.decode())
    inside = {n for a, b in text.continuation for n in range(a, b + 1)}
    records = sum(1 for n, line in enumerate(lines, start=1) if n not in inside and _PY_NOT_WS.search(line))
    return max(records - 1, 0)


# --- values ---------------------------------------------------------------------------------------------------------


def _sql(text: str) -> str:
    """A raw Spark SQL string literal (no escape processing: regexes go in as written)."""
    if "'" in text:
        raise ValueError(f"cannot write {text!r} as a raw SQL literal")
    return f"r'{text}'"


def _one_of(values: Iterable[str]) -> str:
    """A regex matching exactly one of `values` (plain words): one literal, where an IN list is hundreds of nodes that
    Spark's analyzer visits on every pass."""
    return _sql("^(?:" + "|".join(sorted(values)) + ")\\z")


def _trim_sql(column: str) -> str:
    return f"regexp_replace({column}, {_sql(_TRIM)}, '')"


def _parts_sql(text: str, pattern: str, groups: str) -> str:
    """The 13 groups of a timestamp pattern (see _GROUPS) as an array when `text` matches it, else null: one regex
    pass gives them all (`regexp_replace` of the whole match by the groups joined with |)."""
    return (
        f"CASE WHEN {text} RLIKE {_sql(pattern)} "
        f"THEN split(regexp_replace({text}, {_sql(pattern)}, '{groups}'), {_sql(chr(92) + '|')}, -1) END"
    )


def _timestamp_steps(parts: str, out: str) -> list[str]:
    """Select lists (each a projection over the one before) computing column `out`: the UTC timestamp the groups in
    array column `parts` describe, as chrono builds it; null when a field is out of range. A leap second (:60) is the
    next second; fraction digits past the sixth are dropped (microseconds); dates are proleptic Gregorian (days from
    H. Hinnant's civil algorithm, written for C's truncating division, which SQL `div` is). Each intermediate is its
    own column: Spark does not fold a projection into the next when that would copy an expensive expression, which
    keeps the generated code within Java's method size."""
    p = [f"get({parts}, {i})" for i in range(13)]
    sign, signed, year4, month, day, hour, minute, second, fraction, _, osign, ohours, ominutes = p
    x = f"{out}_"
    n = {
        name: f"{x}{name}" for name in ("y", "mo", "d", "s", "ok", "us", "oh", "off", "yy", "era", "yoe", "doy", "days")
    }
    return [
        f"""CASE WHEN {year4} != '' THEN CAST({year4} AS BIGINT)
                 WHEN length(regexp_replace({signed}, '^0*', '')) <= 7
                 THEN IF({sign} = '-', -1, 1) * CAST({signed} AS BIGINT) END AS {n["y"]},
            CAST({month} AS BIGINT) AS {n["mo"]},
            CAST({day} AS BIGINT) AS {n["d"]},
            (CAST({hour} AS BIGINT) * 60 + CAST({minute} AS BIGINT)) * 60 + CAST({second} AS BIGINT) AS {n["s"]},
            CAST({hour} AS BIGINT) <= 23 AND CAST({minute} AS BIGINT) <= 59 AND CAST({second} AS BIGINT) <= 60
                AS {n["ok"]},
            IF({fraction} != '', CAST(rpad(substr({fraction}, 1, 6), 6, '0') AS BIGINT), 0) AS {n["us"]},
            IF({osign} != '', CAST({ohours} AS BIGINT), 0) AS {n["oh"]},
            (IF({osign} != '', CAST({ohours} AS BIGINT) * 3600, 0)
                + IF({ominutes} != '', CAST({ominutes} AS BIGINT) * 60, 0))
                * IF({osign} IN ('-', '\u2212'), -1, 1) AS {n["off"]}""",
        f"{n['y']} - IF({n['mo']} <= 2, 1, 0) AS {n['yy']}",
        f"IF({n['yy']} >= 0, {n['yy']}, {n['yy']} - 399) div 400 AS {n['era']}",
        f"""{n["yy"]} - {n["era"]} * 400 AS {n["yoe"]},
            (IF({n["mo"]} > 2, {n["mo"]} - 3, {n["mo"]} + 9) * 153 + 2) div 5 + {n["d"]} - 1 AS {n["doy"]}""",
        f"""{n["era"]} * 146097 + {n["yoe"]} * 365 + {n["yoe"]} div 4 - {n["yoe"]} div 100 + {n["doy"]} - 719468
            AS {n["days"]}""",
        f"""CASE WHEN {n["y"]} BETWEEN {YEAR_MIN} AND {YEAR_MAX} AND {n["mo"]} BETWEEN 1 AND 12 AND {n["d"]} >= 1
                AND {n["d"]} <= CASE WHEN {n["mo"]} IN (1, 3, 5, 7, 8, 10, 12) THEN 31
                                     WHEN {n["mo"]} IN (4, 6, 9, 11) THEN 30
                                     WHEN {n["mo"]} = 2 THEN IF(({n["y"]} % 4 = 0 AND {n["y"]} % 100 != 0)
                                                                OR {n["y"]} % 400 = 0, 29, 28) END
                AND {n["ok"]} AND {n["oh"]} <= 23
            THEN timestamp_micros(({n["days"]} * 86400 + {n["s"]} - {n["off"]}) * 1000000 + {n["us"]}) END AS {out}""",
    ]


# The general formats read the value trimmed, with its first space made a `T` (as the Polars engine does).
_GENERAL = f"regexp_replace(t_order_ts, {_sql('^([^ ]*) ')}, '$1T')"


def _normalise_steps() -> list[str]:
    """The SQL that cleans, normalises and enriches the records in `view` (line, raw, _reason, one raw String column
    per contract column): `_reason` names the first rule each row breaks (the Polars engine's order); `raw` is kept
    where there is one. One query (one analysis) rather than a chain of DataFrame calls: the plan is large and Spark
    analyses a DataFrame at every call."""
    rates = usd_rates()
    rate_map = "str_to_map('" + ",".join(f"{code}:{rates[code]}" for code in sorted(rates)) + "', ',', ':')"
    steps = [
        "line, raw, _reason, order_ts AS _ts_raw, "
        + ", ".join(f"{_trim_sql(name)} AS t_{name}" for name in INPUT_COLUMNS),
        f"*, {_parts_sql('_ts_raw', TS_FAST, _GROUPS_FAST)} AS f_p",
        *[f"*, {step}" for step in _timestamp_steps("f_p", "f_ts")],
        f"*, CASE WHEN f_ts IS NULL THEN {_parts_sql(_GENERAL, TS_FULL, _GROUPS)} END AS g_p",
        *[f"*, {step}" for step in _timestamp_steps("g_p", "g_ts")],
        " ".join(
            [
                "line, raw, _reason, coalesce(f_ts, g_ts) AS order_ts,",
                " OR ".join(f"coalesce(char_length(t_{n}) > {limit}, false)" for n, limit in FIELD_MAX_CHARS.items()),
                "AS _too_long, t_order_id AS order_id, t_customer_id AS customer_id,",
                f"CASE WHEN upper(t_country) RLIKE {_one_of(countries())} THEN upper(t_country) END AS country,",
                f"CASE WHEN upper(t_currency) RLIKE {_one_of(currencies())} THEN upper(t_currency) END AS currency,",
                f"CASE WHEN t_amount RLIKE {_sql(AMOUNT_PATTERN)} THEN CAST(t_amount AS {AMOUNT.simpleString()}) END",
                "AS amount,",
                f"CASE WHEN t_quantity RLIKE {_sql(INTEGER_PATTERN)}",
                f"AND length(regexp_replace(t_quantity, {_sql(LEADING_SIGN_AND_ZEROS)}, '')) <= 10",
                "THEN CAST(t_quantity AS BIGINT) END AS _quantity,",
                f"CASE WHEN lower(t_status) RLIKE {_one_of(STATUSES)} THEN lower(t_status) END AS status",
            ]
        ),
        f"*, CAST(try_element_at({rate_map}, currency) AS {RATE.simpleString()}) AS _rate,"
        f" CASE WHEN _quantity BETWEEN 1 AND {QUANTITY_MAX} THEN CAST(_quantity AS INT) END AS quantity",
        f"*, bround(amount * _rate, {AMOUNT_SCALE}) AS _usd",
        # A USD value of 10**16 or more cannot be stored: the amount is as invalid as one that breaks the pattern.
        f"*, CAST(CASE WHEN abs(_usd) < {10 ** (AMOUNT_PRECISION - AMOUNT_SCALE)} THEN _usd END"
        f" AS {AMOUNT.simpleString()}) AS amount_usd",
        "*, CASE WHEN _reason IS NOT NULL THEN _reason "
        + " ".join(
            f"WHEN {check} THEN '{reason.value}'"
            for check, reason in (
                ("_too_long", Reason.FIELD_TOO_LONG),
                ("coalesce(length(order_id), 0) = 0", Reason.MISSING_ORDER_ID),
                ("coalesce(length(customer_id), 0) = 0", Reason.MISSING_CUSTOMER_ID),
                (
                    f"order_ts IS NULL OR year(order_ts) NOT BETWEEN {ORDER_YEARS[0]} AND {ORDER_YEARS[1]}",
                    Reason.INVALID_ORDER_TS,
                ),
                ("country IS NULL", Reason.INVALID_COUNTRY),
                ("currency IS NULL", Reason.UNKNOWN_CURRENCY),
                ("_rate IS NULL", Reason.NO_USD_RATE),
                ("amount IS NULL OR amount_usd IS NULL", Reason.INVALID_AMOUNT),
                ("quantity IS NULL", Reason.INVALID_QUANTITY),
                ("status IS NULL", Reason.INVALID_STATUS),
            )
        )
        + " END AS _r",
        "CAST(line AS BIGINT) AS line, IF(_r IS NOT NULL, raw, NULL) AS raw, _r AS _reason, "
        + ", ".join(c for c in CURATED_COLUMNS if c != "order_date")
        + ", to_date(order_ts) AS order_date",
    ]
    return steps


def _normalise_query(view: str) -> str:
    """The SQL that cleans, normalises and enriches the records in `view` (line, raw, _reason, one raw String column
    per contract column): `_reason` names the first rule each row breaks (the Polars engine's order); `raw` is kept
    where there is one. One query (one analysis) rather than a chain of DataFrame calls: the plan is large and Spark
    analyses a DataFrame at every call."""
    query = view
    for step in _normalise_steps():
        query = f"(SELECT {step} FROM {query})"
    return query[1:-1]


# --- records --------------------------------------------------------------------------------------------------------


def _quoted_parser(width: int) -> Any:
    """A Python UDF: the shared `csv_text.parse_quoted` on one record holding quotes (reason, fields)."""
    schema = T.StructType(
        [T.StructField("reason", T.StringType()), T.StructField("fields", T.ArrayType(T.StringType()))]
    )

    def parse(raw: str) -> tuple[str | None, list[str | None]]:
        columns, reasons = csv_text.parse_quoted(["" if len(raw) > RECORD_MAX_CHARS else raw], width)
        return reasons[0], [column[0] for column in columns]

    return F.udf(parse, schema)


def _lit_reason(reason: Reason) -> Column:
    return F.lit(reason.value)


def _structural(bad: Column, control: Column, too_long: Column) -> Column:
    return (
        F.when(bad, _lit_reason(Reason.INVALID_UTF8))
        .when(control, _lit_reason(Reason.CONTROL_CHARACTER))
        .when(too_long, _lit_reason(Reason.RECORD_TOO_LONG))
    )


def _normalised(records: DataFrame) -> DataFrame:
    """`_normalise_query` over `records`."""
    view = f"records_{uuid.uuid4().hex}"
    records.createOrReplaceTempView(view)
    try:
        return records.sparkSession.sql(_normalise_query(view))
    finally:
        records.sparkSession.catalog.dropTempView(view)


def _in_lineage(pairs: Collection[tuple[str, int]]) -> Column:
    """Rows of the deliveries `pairs` (source, seq)."""
    if not pairs:
        return F.lit(False)
    keys = sorted(f"{source}\x1f{seq}" for source, seq in pairs)
    return F.concat_ws("\x1f", F.col("landing_source"), F.col("landing_seq").cast(T.StringType())).isin(keys)


def _as_quarantine(rows: DataFrame, reason: Column) -> DataFrame:
    """Valid rows (VALID columns) as quarantine rows with `reason` (no raw text: they were valid)."""
    return rows.select(
        "landing_source",
        "landing_seq",
        F.lit(None).cast(T.StringType()).alias("source_file"),
        F.col("landing_line").alias("line"),
        reason.alias("reason"),
        F.lit(None).cast(T.StringType()).alias("raw_line"),
        *CURATED_COLUMNS,
    )


def _tagged(columns: Sequence[str], tag: str) -> list[Column]:
    """`columns`, the first carrying the commit tag in its field metadata (Spark writes it into the Parquet footer)."""
    first, *rest = columns
    return [F.col(first).alias(first, metadata={"etl_commit": tag}), *[F.col(c) for c in rest]]


class SparkEngine:
    """The orders contract on Spark (see the module docstring; `etl_jobs.engines` for what each method promises).

    The SparkSession is the one `spark_settings.session()` builds (or the active one: spark-submit's, the tests'),
    obtained on first use, so `--engine spark` costs nothing in a command that computes nothing (extract)."""

    name = "spark"

    def __init__(self, spark: SparkSession | None = None, scratch: str | None = None) -> None:
        self._spark = spark
        self._scratch_uri = scratch
        self._scratch: _Scratch | None = None
        self._empty: dict[str, bytes] = {}

    @property
    def spark(self) -> SparkSession:
        if self._spark is None:
            self._spark = SparkSession.getActiveSession() or spark_settings.session()
        return self._spark

    @property
    def scratch(self) -> _Scratch:
        if self._scratch is None:
            self._scratch = scratch_for(self.spark, self._scratch_uri)
        return self._scratch

    # --- scratch helpers ------------------------------------------------------------------------------------------

    def _read(self, rel: str, parts: Sequence[bytes], schema: T.StructType) -> DataFrame:
        """`parts` (Parquet bytes) as one DataFrame of `schema`."""
        if not parts:
            return self.spark.createDataFrame([], schema)
        paths = [self.scratch.put(f"{rel}/{i:06d}.parquet", part) for i, part in enumerate(parts)]
        return self.spark.read.schema(schema).parquet(*paths)

    def _read_days(self, rel: str, days: dict[date, bytes], schema: T.StructType) -> DataFrame:
        """Per-date Parquet bytes (partition data or index) as one DataFrame with `order_date`."""
        if not days:
            return self.spark.createDataFrame([], schema)
        for day, data in days.items():
            self.scratch.put(f"{rel}/order_date={day.isoformat()}/part.parquet", data)
        return self.spark.read.schema(schema).option("basePath", self.scratch.uri(rel)).parquet(self.scratch.uri(rel))

    def _write_one(self, rows: DataFrame, rel: str) -> bytes:
        """`rows` as ONE Parquet object written by Spark."""
        rows.repartition(1).write.parquet(self.scratch.uri(rel))
        files = self.scratch.files(rel)
        if len(files) != 1:
            raise RuntimeError(f"Spark wrote {len(files)} files for one object under {self.scratch.uri(rel)}")
        return next(iter(files.values()))

    def _write_by(self, rows: DataFrame, rel: str, column: str) -> dict[str, bytes]:
        """`rows` written partitioned by `column`, one Parquet object per value: {value: bytes}."""
        rows.repartition(column).write.partitionBy(column).parquet(self.scratch.uri(rel))
        out: dict[str, bytes] = {}
        for name, data in self.scratch.files(rel).items():
            folder, _, _ = name.partition("/")
            value = folder.removeprefix(f"{column}=")
            if value in out:
                raise RuntimeError(f"Spark wrote more than one file for {column}={value} under {self.scratch.uri(rel)}")
            out[value] = data
        return out

    def _empty_parquet(self, schema: T.StructType, kind: str) -> bytes:
        if kind not in self._empty:
            rel = f"empty-{uuid.uuid4().hex}"
            try:
                self._empty[kind] = self._write_one(self.spark.createDataFrame([], schema), rel)
            finally:
                self.scratch.remove(rel)
        return self._empty[kind]

    # --- stage ----------------------------------------------------------------------------------------------------

    def _lines(self, text: _Text, rel: str) -> DataFrame:
        """Physical lines (line, raw, bad, control, quoted, blank) with multi-line records joined at their first line
        and their other lines removed."""
        spark = self.spark
        path = self.scratch.put(f"{rel}/input.txt", text.data)
        piece = F.col("piece")
        lines = (
            spark.read.text(path, wholetext=True)
            .select(F.posexplode(F.split("value", "\n", -1)).alias("pos", "piece"))
            .where(F.col("pos") < text.lines)
            .select(
                (F.col("pos") + 1).alias("line"),
                F.when(piece.endswith("\r"), F.expr("substring(piece, 1, char_length(piece) - 1)"))
                .otherwise(piece)
                .alias("raw"),
            )
        )
        if text.lines > SPREAD_LINES:
            lines = lines.repartition(spark.sparkContext.defaultParallelism)
        raw = F.col("raw")
        bad = raw.contains("\ufffd") & ~F.col("line").isin(text.genuine) if text.lossy else F.lit(False)
        lines = lines.select(
            "line",
            "raw",
            bad.alias("bad"),
            raw.rlike(csv_text.CONTROL).alias("control"),
            raw.contains('"').alias("quoted"),
            (~raw.rlike(_NOT_WS)).alias("blank"),
        )
        if not text.multi:
            return lines
        inside = spark.createDataFrame(text.continuation, "a long, b long").select(
            F.explode(F.sequence("a", "b")).alias("line")
        )
        joined = spark.createDataFrame(text.multi, "line long, m_raw string, m_bad boolean, m_control boolean")
        return (
            lines.join(F.broadcast(inside), "line", "left_anti")
            .join(F.broadcast(joined), "line", "left")
            .select(
                "line",
                F.coalesce("m_raw", "raw").alias("raw"),
                F.coalesce("m_bad", "bad").alias("bad"),
                F.coalesce("m_control", "control").alias("control"),
                "quoted",
                "blank",
            )
        )

    def _records(self, lines: DataFrame, text: _Text, header: csv_text.Header) -> DataFrame:
        """Data records: line, raw, structural `_reason`, one raw String column per contract column."""
        records = lines.where((F.col("line") > text.header_line) & ~F.col("blank"))
        raw = F.col("raw")
        positions = header.positions
        parts = F.split(raw, ",", -1)
        plain = records.where(~F.col("quoted")).select(
            "line",
            "raw",
            _structural(F.col("bad"), F.col("control"), F.octet_length(raw) > RECORD_MAX_CHARS)
            .when(F.size(parts) > header.width, _lit_reason(Reason.TOO_MANY_FIELDS))
            .when(F.size(parts) < header.width, _lit_reason(Reason.TOO_FEW_FIELDS))
            .alias("_reason"),
            *[F.get(parts, position).alias(name) for name, position in positions.items()],
        )
        if not text.quoted:
            return plain
        parsed = F.col("_parsed")
        quoted = (
            records.where(F.col("quoted"))
            .withColumn("_parsed", _quoted_parser(header.width)(raw))
            .select(
                "line",
                "raw",
                _structural(F.col("bad"), F.col("control"), F.char_length(raw) > RECORD_MAX_CHARS)
                .otherwise(parsed["reason"])
                .alias("_reason"),
                *[F.get(parsed["fields"], position).alias(name) for name, position in positions.items()],
            )
        )
        return plain.unionByName(quoted)

    def stage(self, data: bytes, lineage: Lineage) -> StagedFile:
        text = _analyse(data)
        if text.header_line == 0:
            return StagedFile(
                rows_in=0,
                rows_valid=0,
                valid=self._empty_parquet(VALID, "valid"),
                rejected=self._empty_parquet(QUARANTINE, "quarantine"),
                reasons={},
                blank_lines=text.blank_lines or 0,
            )
        if text.header_bad:
            raise csv_text.not_utf8_header(_rows_in(text))
        try:
            header = csv_text.read_header(text.header_text, 0)
        except ContractError as error:
            error.rows_in = _rows_in(text)  # counted only for a file refused whole
            raise
        rel = f"stage-{uuid.uuid4().hex}"
        try:
            return self._stage(text, header, lineage, rel)
        finally:
            self.scratch.remove(rel)

    def _stage(self, text: _Text, header: csv_text.Header, lineage: Lineage, rel: str) -> StagedFile:
        lines = self._lines(text, rel)
        staged = _normalised(self._records(lines, text, header)).persist()
        try:
            counts = (
                staged.select(F.coalesce("_reason", F.lit("")).alias("k"))
                .unionByName(lines.where(F.col("blank")).select(F.lit("\x00blank").alias("k")))
                .groupBy("k")
                .count()
                .collect()
            )
            by_kind = {row["k"]: int(row["count"]) for row in counts}
            blank_lines = by_kind.pop("\x00blank", 0)
            rows_valid = by_kind.pop("", 0)
            reasons = dict(sorted(by_kind.items()))
            lineage_columns = [
                F.lit(lineage.source).cast(T.StringType()).alias("landing_source"),
                F.lit(lineage.seq).cast(T.LongType()).alias("landing_seq"),
            ]
            valid = staged.where(F.col("_reason").isNull()).select(
                *CURATED_COLUMNS, *lineage_columns, F.col("line").alias("landing_line")
            )
            structural = F.col("_reason").isin([r.value for r in STRUCTURAL_REASONS])
            rejected = staged.where(F.col("_reason").isNotNull()).select(
                *lineage_columns,
                F.lit(lineage.file).cast(T.StringType()).alias("source_file"),
                "line",
                F.col("_reason").alias("reason"),
                F.col("raw").alias("raw_line"),
                *[F.when(~structural, F.col(c)).alias(c) for c in CURATED_COLUMNS],
            )
            return StagedFile(
                rows_in=rows_valid + sum(reasons.values()),
                rows_valid=rows_valid,
                valid=self._write_one(valid, f"{rel}/valid") if rows_valid else self._empty_parquet(VALID, "valid"),
                rejected=(
                    self._write_one(rejected, f"{rel}/rejected")
                    if reasons
                    else self._empty_parquet(QUARANTINE, "quarantine")
                ),
                reasons=reasons,
                blank_lines=blank_lines,
                ignored_columns=header.ignored,
            )
        finally:
            staged.unpersist()

    # --- quarantine_all -------------------------------------------------------------------------------------------

    def quarantine_all(self, valid: bytes, reason: str) -> bytes:
        rel = f"quarantine-{uuid.uuid4().hex}"
        try:
            rows = self._read(f"{rel}/in", [valid], VALID)
            return self._write_one(_as_quarantine(rows, F.lit(reason)), f"{rel}/out")
        finally:
            self.scratch.remove(rel)

    # --- merge ----------------------------------------------------------------------------------------------------

    def merge(
        self, incoming: Sequence[bytes], table: TableView, drop: Collection[tuple[str, int]], tag: str
    ) -> MergeResult:
        rel = f"merge-{uuid.uuid4().hex}"
        try:
            return self._merge(incoming, table, set(drop), tag, rel)
        finally:
            self.scratch.remove(rel)

    def _merge(
        self, incoming: Sequence[bytes], table: TableView, dropped: set[tuple[str, int]], tag: str, rel: str
    ) -> MergeResult:
        spark = self.spark
        leaving = _in_lineage(dropped)
        new = self._read(f"{rel}/new", list(incoming), VALID)
        index = self._read_days(f"{rel}/index", dict(table.index()), INDEX)
        # The partitions this merge reads: where the new rows go, and where their orders (and the rows of dropped
        # deliveries) are now, found in the index without reading any data.
        located = index.join(new.select("order_id"), "order_id", "left_semi").select("order_date")
        if dropped:
            located = located.unionByName(index.where(leaving).select("order_date"))
        touched = {row["order_date"] for row in new.select("order_date").unionByName(located).distinct().collect()}

        def read_partitions(days: Iterable[date], folder: str) -> DataFrame:
            found = {}
            for day in sorted(days):
                data = table.partition(day)
                if data is not None:
                    found[day] = data
            frame = self._read_days(f"{rel}/{folder}", found, PARTITIONS)
            return frame.select(*VALID.fieldNames())

        current = read_partitions(touched, "current").persist()
        kept = current
        history = spark.createDataFrame([], VALID)
        if dropped:
            kept = current.where(~leaving)
            affected = current.where(leaving).select("order_id").distinct()
            if affected.take(1):
                parts = list(table.history())
                history = (
                    self._read(f"{rel}/history", parts, VALID).where(~leaving).join(affected, "order_id", "left_semi")
                )
        candidates = (
            kept.withColumn("_origin", F.lit(0))
            .unionByName(new.withColumn("_origin", F.lit(1)))
            .unionByName(history.withColumn("_origin", F.lit(2)))
        )
        order = Window.partitionBy("order_id").orderBy(*[F.col(c).desc() for c in (*VERSION_ORDER, "_origin")])
        flagged = candidates.withColumn("_latest", F.row_number().over(order) == 1).persist()
        try:
            return self._publish(flagged, current, touched, dropped, read_partitions, tag, rel)
        finally:
            flagged.unpersist()
            current.unpersist()

    def _publish(
        self,
        flagged: DataFrame,
        current: DataFrame,
        touched: set[date],
        dropped: set[tuple[str, int]],
        read_partitions: Any,
        tag: str,
        rel: str,
    ) -> MergeResult:
        latest, origin = F.col("_latest"), F.col("_origin")
        winning = flagged.where(latest)
        arrived = winning.where(origin != 0)

        def days(frame: DataFrame, kind: str) -> DataFrame:
            return frame.select(
                F.lit(kind).alias("kind"),
                F.col("order_date").cast(T.StringType()).alias("a"),
                F.lit(None).cast(T.StringType()).alias("b"),
                F.lit(0).cast(T.LongType()).alias("n"),
            ).distinct()

        def per_delivery(frame: DataFrame, kind: str) -> DataFrame:
            return (
                frame.groupBy("landing_source", "landing_seq")
                .agg(
                    F.lit(kind).alias("kind"),
                    F.col("landing_source").alias("a"),
                    F.col("landing_seq").cast(T.StringType()).alias("b"),
                    F.count(F.lit(1)).alias("n"),
                )
                .select("kind", "a", "b", "n")
            )

        moves = (
            arrived.select("order_id", F.col("order_date").alias("_to"))
            .join(current.select("order_id", F.col("order_date").alias("_from")), "order_id")
            .where(F.col("_from") != F.col("_to"))
            .select(
                F.lit("move").alias("kind"),
                F.col("_from").cast(T.StringType()).alias("a"),
                F.col("_to").cast(T.StringType()).alias("b"),
                F.lit(0).cast(T.LongType()).alias("n"),
            )
            .distinct()
        )
        stats = (
            days(winning, "winner")
            .unionByName(days(arrived, "changed"))
            .unionByName(days(flagged.where(~latest & (origin == 0)), "changed"))
            .unionByName(days(current.where(_in_lineage(dropped)), "changed"))
            .unionByName(per_delivery(flagged.where(latest & (origin == 1)), "won"))
            .unionByName(per_delivery(flagged.where(~latest & (origin == 1)), "superseded"))
            .unionByName(moves)
            .collect()
        )
        winner_days = {date.fromisoformat(r["a"]) for r in stats if r["kind"] == "winner"}
        changed = {date.fromisoformat(r["a"]) for r in stats if r["kind"] == "changed"}
        won = {(r["a"], int(r["b"])): int(r["n"]) for r in stats if r["kind"] == "won"}
        lost = {(r["a"], int(r["b"])): int(r["n"]) for r in stats if r["kind"] == "superseded"}
        moved = sorted({(date.fromisoformat(r["a"]), date.fromisoformat(r["b"])) for r in stats if r["kind"] == "move"})
        rows = winning.select(*VALID.fieldNames())
        # A restored version may live on a date no other row touched: that partition is rewritten too.
        extra = winner_days - touched
        if extra:
            rows = rows.unionByName(read_partitions(extra, "extra"))
        writes = self._partitions(rows.where(F.col("order_date").isin(sorted(changed))), changed, tag, rel)
        superseded = self._superseded(flagged.where(~latest & (origin == 1)), sorted(lost), rel)
        return MergeResult(
            partitions=writes,
            moves=moved,
            won=won,
            superseded=superseded,
            superseded_counts=lost,
        )

    def _partitions(self, rows: DataFrame, changed: set[date], tag: str, rel: str) -> list[PartitionWrite]:
        """The new content of every changed partition: data and index, one Parquet object each, tagged."""
        if not changed:
            return []
        rows = rows.persist()
        try:
            data = self._write_by(
                rows.select(*_tagged(PARTITION_COLUMNS, tag), "order_date"), f"{rel}/data", "order_date"
            )
            index = self._write_by(rows.select(*_tagged(INDEX_COLUMNS, tag), "order_date"), f"{rel}/idx", "order_date")
            counts = {r["order_date"]: int(r["count"]) for r in rows.groupBy("order_date").count().collect()}
        finally:
            rows.unpersist()
        writes = []
        for day in sorted(changed):
            key = day.isoformat()
            if key not in data:
                writes.append(PartitionWrite(day, None, None, 0))
                continue
            if len(data[key]) > PARTITION_TARGET_BYTES:
                log.warning(
                    "partition %s is %d bytes, above the %d-byte target; it is still one object (see spark_engine)",
                    key,
                    len(data[key]),
                    PARTITION_TARGET_BYTES,
                )
            writes.append(PartitionWrite(day, data[key], index[key], counts[day]))
        return writes

    def _superseded(self, losers: DataFrame, keys: list[tuple[str, int]], rel: str) -> dict[tuple[str, int], bytes]:
        """The new rows that lost to another version, as quarantine rows, one Parquet object per delivery."""
        if not keys:
            return {}
        numbers = {key: i for i, key in enumerate(keys)}
        number = F.lit(None).cast(T.IntegerType())
        for (source, seq), i in numbers.items():
            number = F.when((F.col("landing_source") == source) & (F.col("landing_seq") == seq), i).otherwise(number)
        rows = _as_quarantine(losers, _lit_reason(Reason.SUPERSEDED)).withColumn("k", number)
        written = self._write_by(rows, f"{rel}/superseded", "k")
        return {key: written[str(i)] for key, i in numbers.items()}
