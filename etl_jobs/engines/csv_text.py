"""The CSV text rules every engine shares, in plain Python, so that engines split records, read quoted fields and judge
the header identically (same records, same reasons, same messages); each engine runs them where it sees fit (the
Polars engine on the few quoted records, the Spark engine on the driver and in a Python UDF on executors).

- `prepare(data)`: the bytes as the record splitter sees them (BOM removed, CR-only line endings read as LF);
- `CONTROL`: the regular expression of a control character (the `control_character` reason), for any regex engine;
- `open_after(lines)`: for the lines holding a double quote, in file order, whether a quoted field is still open at
  the end of each (the record goes on), with the rule that a quote never closed by end of file ends its record at its
  own line, so one stray quote cannot swallow the rest of the file;
- `parse_quoted(records, width)`: fields and structural reason of records holding quotes, with the `csv` module;
- `read_header(raw, rows_in)`: the header's column names, checked against the contract (ContractError otherwise).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass

from etl_jobs.contract import INPUT_COLUMNS, RECORD_MAX_CHARS, ContractError, FileReason, Reason

BOM = b"\xef\xbb\xbf"
# C0 control characters and DEL, except tab; a CR left inside a line (not part of its CRLF terminator) is one too.
CONTROL = r"[\x00-\x08\x0b-\x1f\x7f]"
# Whitespace as the contract means it (a blank line, trimming a field): the Unicode White_Space property, which is
# what Rust's `char::is_whitespace` (Polars' `strip_chars`, the `\s` of its regexes, chrono's parser) implements.
# Python's `str.isspace` differs (it counts U+001C..U+001F), so engines build their classes from this table.
WHITE_SPACE: tuple[tuple[int, int], ...] = (
    (0x09, 0x0D),
    (0x20, 0x20),
    (0x85, 0x85),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
)


def white_space_class(negate: bool = False) -> str:
    """WHITE_SPACE as a Java regex character class (`\\x{...}` escapes), for Spark's regular expressions."""
    parts = "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in WHITE_SPACE)
    return f"[{'^' if negate else ''}{parts}]"


def python_white_space_class(negate: bool = False) -> str:
    """WHITE_SPACE as a Python `re` character class (`\\uXXXX` escapes)."""
    parts = "".join(f"\\u{a:04X}" if a == b else f"\\u{a:04X}-\\u{b:04X}" for a, b in WHITE_SPACE)
    return f"[{'^' if negate else ''}{parts}]"


def prepare(data: bytes) -> bytes:
    """The bytes of one file (gzip already undone) as records are split from them: without a UTF-8 BOM, and with
    CR-only line endings (classic Mac OS exports) read as LF (a CR inside a quoted field of such a file was a line
    break too)."""
    if data.startswith(BOM):
        data = data[len(BOM) :]
    if b"\r" in data and b"\n" not in data:
        data = data.replace(b"\r", b"\n")
    return data


def quote_state(line: str, in_quotes: bool) -> bool:
    """Scan one physical line starting in `in_quotes`; return whether a quoted field is still open at its end.

    Follows the `csv` module: a quote opens a field only at the start of a field; inside a quoted field `""` is a
    literal quote and a single `"` closes the field; a quote in the middle of an unquoted field is literal.
    """
    at_field_start = not in_quotes
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if in_quotes:
            if ch == '"':
                if i + 1 < n and line[i + 1] == '"':
                    i += 1
                else:
                    in_quotes = False
        elif ch == '"' and at_field_start:
            in_quotes = True
        at_field_start = ch == "," and not in_quotes
        i += 1
    return in_quotes


def open_after(quoted_lines: Sequence[str]) -> list[bool]:
    """Per line of `quoted_lines` (the lines holding a double quote, in file order): is a quoted field still open at
    its end? Lines without quotes in between keep the state of the quoted line before them (the caller's job).

    A quote still open at end of file ends its record at its own line, and the scan restarts at the next quoted line.
    """
    state = [False] * len(quoted_lines)
    start = 0
    while start < len(quoted_lines):
        in_quotes = False
        opened_at = -1
        for k in range(start, len(quoted_lines)):
            was_open = in_quotes
            in_quotes = quote_state(quoted_lines[k], in_quotes)
            if in_quotes and not was_open:
                opened_at = k
            state[k] = in_quotes
        if not in_quotes:
            break
        state[opened_at] = False
        start = opened_at + 1
    return state


def parse_quoted(raw: Sequence[str], width: int) -> tuple[list[list[str | None]], list[str | None]]:
    """Fields (one list per column) and structural reason of records that contain quotes, with the `csv` module
    (strict). Its field size limit is raised to the record limit, so a long quoted field is judged by the field limits
    (`field_too_long`) rather than failing to parse."""
    if csv.field_size_limit() < RECORD_MAX_CHARS:
        csv.field_size_limit(RECORD_MAX_CHARS)
    columns: list[list[str | None]] = [[] for _ in range(width)]
    reasons: list[str | None] = []
    for text in raw:
        reason: str | None = None
        fields: list[str] = []
        try:
            rows = list(csv.reader([text], strict=True))
            if len(rows) != 1:
                reason = Reason.MALFORMED_QUOTES.value
            else:
                fields = rows[0]
        except csv.Error as error:
            reason = (Reason.UNTERMINATED_QUOTE if "end of data" in str(error) else Reason.MALFORMED_QUOTES).value
        if reason is None and len(fields) != width:
            reason = (Reason.TOO_MANY_FIELDS if len(fields) > width else Reason.TOO_FEW_FIELDS).value
        reasons.append(reason)
        for j in range(width):
            columns[j].append(fields[j] if reason is None else None)
    return columns, reasons


@dataclass(frozen=True)
class Header:
    """The header row read under the contract: every column name (trimmed, lower case) in file order."""

    names: list[str]

    @property
    def width(self) -> int:
        return len(self.names)

    @property
    def ignored(self) -> list[str]:
        """Columns the contract does not know: dropped, and listed in the manifest."""
        return [c for c in self.names if c not in INPUT_COLUMNS]

    @property
    def positions(self) -> dict[str, int]:
        """Where each contract column is, in INPUT_COLUMNS order."""
        return {name: self.names.index(name) for name in INPUT_COLUMNS}


def not_utf8_header(rows_in: int) -> ContractError:
    return ContractError(
        "the header row contains bytes that are not UTF-8; the file must be UTF-8 encoded",
        FileReason.NOT_UTF8_HEADER,
        rows_in,
    )


def read_header(raw: str, rows_in: int) -> Header:
    """The header record `raw` checked against the contract; ContractError (with `rows_in`, the file's record count
    without the header) when it is not CSV, lacks a required column or repeats one."""
    try:
        rows = list(csv.reader([raw], strict=True))
    except csv.Error as error:
        raise ContractError(f"the header row is not valid CSV: {error}", FileReason.BAD_HEADER, rows_in) from error
    names = [name.strip().lower() for name in rows[0]] if rows else []
    missing = [c for c in INPUT_COLUMNS if c not in names]
    if missing:
        hint = ""
        if any(re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ].*", value.strip()) for value in names):
            hint = " (the first line looks like data: the header row may be missing)"
        raise ContractError(
            f"the header is missing required column(s) {missing}{hint}; expected a header row naming "
            f"{list(INPUT_COLUMNS)} in any order, comma-separated, got {names}",
            FileReason.MISSING_COLUMNS,
            rows_in,
        )
    duplicated = sorted({c for c in names if names.count(c) > 1})
    if duplicated:
        raise ContractError(
            f"the header names column(s) {duplicated} more than once; each column must appear once",
            FileReason.DUPLICATE_COLUMNS,
            rows_in,
        )
    return Header(names)
