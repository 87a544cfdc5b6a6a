"""Evaluate a Glue Data Quality ruleset (DQDL text) locally with DuckDB, for the rule types DuckDB can judge as Glue
does. The rules are parsed from the text itself, so what is tested is the ruleset Glue is given.

Supported: `IsComplete "c"`, `IsUnique "c"`, `ColumnLength "c" <op> N`, `ColumnValues "c" in [...]`,
`ColumnValues "c" <op> value` (numbers, or dates as quoted ISO text), `CustomSql "<SQL over primary>" <op> N` (SQL that
DuckDB and Spark read alike), `RowCount <op> N`. A rule of another type raises `NotLocal` naming it: only Glue
evaluates it. Glue's semantics kept: ColumnValues and ColumnLength pass when every non-null value passes (nulls are
IsComplete's business); CustomSql compares the query's single number.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import duckdb

_OPS = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "=": "="}
_RULE = re.compile(
    r"""^(?P<kind>[A-Za-z]+)\s*(?:"(?P<column>(?:[^"\\]|\\.)*)")?\s*(?P<rest>.*)$""",
    re.S,
)


class NotLocal(ValueError):
    """A rule type only Glue evaluates."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    rule: str
    passed: bool


def rules_of(ruleset: str) -> list[str]:
    """The rules of `Rules = [ ... ]`, split on top-level commas (not those inside quotes or brackets)."""
    match = re.search(r"Rules\s*=\s*\[(.*)\]\s*$", ruleset.strip(), re.S)
    if not match:
        raise ValueError("not a DQDL ruleset: expected `Rules = [ ... ]`")
    body, rules, depth, quoted, current = match.group(1), [], 0, False, ""
    for char in body:
        if char == '"' and not current.endswith("\\"):
            quoted = not quoted
        elif not quoted and char == "[":
            depth += 1
        elif not quoted and char == "]":
            depth -= 1
        if char == "," and depth == 0 and not quoted:
            rules.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        rules.append(current.strip())
    return rules


def _comparison(rest: str) -> tuple[str, str]:
    match = re.fullmatch(r"(>=|<=|>|<|=)\s*(.+)", rest.strip(), re.S)
    if not match:
        raise NotLocal(f"comparison {rest!r}")
    return _OPS[match.group(1)], match.group(2).strip()


def _literal(value: str) -> str:
    if value.startswith('"') and value.endswith('"'):
        return "'" + value[1:-1].replace("'", "''") + "'"
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return value
    raise NotLocal(f"value {value!r}")


def _sql(rule: str) -> str:
    """A query returning one boolean: whether the rule passes on `primary`."""
    match = _RULE.match(rule)
    if not match:
        raise NotLocal(rule)
    kind, column, rest = match.group("kind"), match.group("column"), match.group("rest").strip()
    quoted = f'"{column}"' if column is not None else None
    if kind == "IsComplete" and quoted and not rest:
        return f"SELECT COUNT(*) = 0 FROM _primary WHERE {quoted} IS NULL"
    if kind == "IsUnique" and quoted and not rest:
        return f"SELECT COUNT(*) = COUNT(DISTINCT {quoted}) AND COUNT(*) = COUNT({quoted}) FROM _primary"
    if kind == "ColumnLength" and quoted:
        op, value = _comparison(rest)
        return f"SELECT COUNT(*) = 0 FROM _primary WHERE NOT (length({quoted}) {op} {_literal(value)})"
    if kind == "ColumnValues" and quoted and rest.startswith("in"):
        values = re.findall(r'"((?:[^"\\]|\\.)*)"', rest)
        listed = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
        return f"SELECT COUNT(*) = 0 FROM _primary WHERE {quoted} IS NOT NULL AND {quoted} NOT IN ({listed})"
    if kind == "ColumnValues" and quoted:
        op, value = _comparison(rest)
        literal = _literal(value)
        if literal.startswith("'"):  # a date as text: compare as a date, as Glue does for date columns
            literal = f"DATE {literal}"
        return f"SELECT COUNT(*) = 0 FROM _primary WHERE {quoted} IS NOT NULL AND NOT ({quoted} {op} {literal})"
    if kind == "CustomSql" and quoted:
        op, value = _comparison(rest)
        # Glue names the data `primary`, a word DuckDB reserves: the one spelling difference, renamed here.
        query = re.sub(r"\bFROM\s+primary\b", "FROM _primary", column, flags=re.I)
        return f"SELECT ({query}) {op} {_literal(value)}"
    if kind == "RowCount" and not quoted:
        op, value = _comparison(rest)
        return f"SELECT COUNT(*) {op} {_literal(value)} FROM _primary"
    raise NotLocal(f"rule type {kind}")


def evaluate(ruleset: str, curated: Path) -> list[Outcome]:
    """Every rule of `ruleset` over the curated zone at `curated` (hive-partitioned Parquet, `order_date=...`)."""
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    files = str(curated / "order_date=*" / "*.parquet")
    connection.execute(f"CREATE VIEW _primary AS SELECT * FROM read_parquet('{files}', hive_partitioning = true)")
    outcomes = []
    for rule in rules_of(ruleset):
        (passed,) = connection.execute(_sql(rule)).fetchone() or (False,)
        outcomes.append(Outcome(rule, bool(passed)))
    return outcomes


def local_rule_types(ruleset: str) -> tuple[set[str], set[str]]:
    """(rule types evaluated here, rule types only Glue evaluates) of the ruleset."""
    local, glue_only = set(), set()
    for rule in rules_of(ruleset):
        kind = _RULE.match(rule) or re.match(r"\w+", rule)
        name = kind.group(1) if kind else rule
        try:
            _sql(rule)
            local.add(name)
        except NotLocal:
            glue_only.add(name)
    return local, glue_only
