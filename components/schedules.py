"""EventBridge Scheduler expressions, `rate(...)` and `cron(...)`, checked field by field as AWS documents them.

`check_schedule()` returns the expression or raises `ValueError` naming every problem in it (a field out of range, a
`?` in the wrong place, a unit that does not agree with its value). `SCHEDULE_PATTERN` is the same grammar as one
regular expression (ECMA-262 syntax, no flags), generated from the same field table, so the JSON Schema that editors
use accepts exactly what the loader accepts.

The grammar (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cron-expressions.html, Scheduler uses the
same): `rate(<n> <unit>)` with a positive whole `n`, `minute`/`hour`/`day` for 1 and the plural above 1;
`cron(<minutes> <hours> <day-of-month> <month> <day-of-week> <year>)`, six fields separated by spaces:

| field | values | beside `, - * /` |
|---|---|---|
| minutes | 0-59 | |
| hours | 0-23 | |
| day-of-month | 1-31 | `?`, `L`, `LW`, `<day>W` |
| month | 1-12 or JAN-DEC | |
| day-of-week | 1-7 or SUN-SAT | `?`, `L`, `<day>L`, `<day>#<1-5>`; no `/` |
| year | 1970-2199 | |

A field is a comma-separated list of `*`, a value or a range `a-b`, each optionally stepped (`*/15`, `0/10`, `8-17/2`,
steps from 1 up to the field's largest value). `L`, `W` and `#` forms stand alone in their field (AWS: "3#1,6#3" is
invalid). Exactly one of day-of-month and day-of-week is `?`. Names are accepted in any case; a single-digit value may
carry one leading zero (`05`). Ranges may wrap (`FRI-MON`, `22-2`), as in the Quartz syntax AWS follows.
"""

from __future__ import annotations

import dataclasses
import re

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
RATE_UNITS = ("minute", "hour", "day")
_EXAMPLES = "e.g. 'rate(1 hour)', 'rate(15 minutes)' or 'cron(0 2 * * ? *)'"


@dataclasses.dataclass(frozen=True)
class CronField:
    """One of the six cron fields: its values, names and the special forms AWS accepts in it."""

    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    """Names of low, low+1, ... (months, days of the week)."""
    max_step: int = 0
    """Largest `/` step; 0 means the field takes no step."""
    any_day: bool = False
    """`?` allowed (day-of-month, day-of-week)."""
    special: str = ""
    """`dom`: `L`, `LW`, `<day>W`; `dow`: `L`, `<day>L`, `<day>#<n>`."""

    @property
    def allowed(self) -> str:
        named = f" or {self.names[0]}-{self.names[-1]}" if self.names else ""
        return f"{self.low}-{self.high}{named}"


FIELDS: tuple[CronField, ...] = (
    CronField("minutes", 0, 59, max_step=59),
    CronField("hours", 0, 23, max_step=23),
    CronField("day-of-month", 1, 31, max_step=31, any_day=True, special="dom"),
    CronField("month", 1, 12, names=_MONTHS, max_step=12),
    CronField("day-of-week", 1, 7, names=_DAYS, any_day=True, special="dow"),
    CronField("year", 1970, 2199, max_step=229),
)
_DAY_OF_MONTH, _DAY_OF_WEEK = FIELDS[2], FIELDS[4]
NTH_MAX = 5  # `<day>#<n>`: the n-th such day of the month

# A value or step: decimal, a single digit optionally with one leading zero (`05`).
_NUMBER = re.compile(r"0?[0-9]|[1-9][0-9]*")


# ---------------------------------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------------------------------


def _value(text: str, field: CronField, problems: list[str]) -> None:
    """A single value of the field (upper-cased): a number in range or, where the field has them, a name."""
    if text in field.names:
        return
    if not _NUMBER.fullmatch(text):
        problems.append(f"{field.name}: {text!r} is not a value; allowed: {field.allowed}")
    elif not field.low <= int(text) <= field.high:
        problems.append(f"{field.name}: {text} is outside {field.allowed}")


def _item(text: str, field: CronField, problems: list[str]) -> None:
    """`*`, `a` or `a-b`, each with an optional `/step`."""
    base, slash, step = text.partition("/")
    if slash:
        if not field.max_step:
            problems.append(f"{field.name}: takes no '/' step")
        elif not _NUMBER.fullmatch(step) or not 1 <= int(step) <= field.max_step:
            problems.append(f"{field.name}: the step in {text!r} must be a whole number from 1 to {field.max_step}")
    if base == "*":
        return
    start, dash, end = base.partition("-")
    _value(start, field, problems)
    if dash:
        _value(end, field, problems)


def _is_special(text: str, field: CronField) -> bool:
    """`L`, `LW`, `<day>W` (day-of-month) and `L`, `<day>L`, `<day>#<n>` (day-of-week): forms that stand alone."""
    if field.special == "dom":
        return text in ("L", "LW") or text.endswith("W")
    if field.special == "dow":
        return text.endswith("L") or "#" in text
    return False


def _special(text: str, field: CronField, problems: list[str]) -> None:
    if text in ("L", "LW"):
        return
    if field.special == "dom" or text.endswith("L"):
        _value(text[:-1], field, problems)
        return
    day, _, nth = text.partition("#")
    _value(day, field, problems)
    if not re.fullmatch(f"[1-{NTH_MAX}]", nth):
        problems.append(f"{field.name}: in {text!r} the n of <day>#<n> must be 1-{NTH_MAX}")


def _field(text: str, field: CronField, problems: list[str]) -> None:
    if not text.isascii():
        problems.append(f"{field.name}: {text!r} is not a value; allowed: {field.allowed}")
        return
    text = text.upper()  # names and L/W are accepted in any case
    if text == "?":
        if not field.any_day:
            problems.append(f"{field.name}: '?' is only allowed in day-of-month or day-of-week")
        return
    if "," not in text and _is_special(text, field):
        _special(text, field, problems)
        return
    for item in text.split(","):
        if _is_special(item, field):
            problems.append(f"{field.name}: {item!r} stands alone in its field, not in a list")
        else:
            _item(item, field, problems)


def _spaced(body: str) -> list[str] | None:
    """The space-separated parts of what is inside the parentheses; None if it starts or ends with a space."""
    if body != body.strip(" "):
        return None
    return [part for part in body.split(" ") if part]


def _cron(body: str) -> list[str]:
    fields = _spaced(body)
    if fields is None:
        return ["no space after 'cron(' or before ')'"]
    if len(fields) != len(FIELDS):
        return [
            f"cron takes 6 fields (minutes hours day-of-month month day-of-week year), got {len(fields)}; "
            "e.g. 'cron(0 2 * * ? *)'"
        ]
    problems: list[str] = []
    for text, field in zip(fields, FIELDS, strict=True):
        _field(text, field, problems)
    if (fields[2] == "?") == (fields[4] == "?"):
        problems.append(
            "exactly one of day-of-month and day-of-week must be '?' (the other says which days), "
            "e.g. 'cron(0 2 * * ? *)' or 'cron(0 2 ? * MON-FRI *)'"
        )
    return problems


def _rate(body: str) -> list[str]:
    parts = _spaced(body)
    if parts is None:
        return ["no space after 'rate(' or before ')'"]
    if len(parts) != 2:
        return [f"a rate is 'rate(<n> <unit>)', {_EXAMPLES}"]
    value, unit = parts
    singular = unit.removesuffix("s")
    if not re.fullmatch(r"[1-9][0-9]*", value):
        return [f"the value {value!r} must be a whole number of at least 1 (no sign, no leading zero)"]
    if singular not in RATE_UNITS:
        return [f"the unit {unit!r} is not minute(s), hour(s) or day(s)"]
    if int(value) == 1 and unit != singular:
        return [f"AWS wants the singular unit for 1, e.g. 'rate(1 {singular})'"]
    if int(value) > 1 and unit == singular:
        return [f"AWS wants the plural unit above 1, e.g. 'rate({value} {singular}s)'"]
    return []


def schedule_problems(expression: str) -> list[str]:
    """Every problem of a `rate()` / `cron()` expression; empty when AWS accepts it."""
    for kind, check in (("rate", _rate), ("cron", _cron)):
        if expression.startswith(f"{kind}(") and expression.endswith(")"):
            return check(expression[len(kind) + 1 : -1])
    if expression.startswith("at("):
        return [f"a one-time at() schedule would run the pipeline once; use rate() or cron(), {_EXAMPLES}"]
    return [f"is not a schedule: use 'rate(<n> <minutes|hours|days>)' or 'cron(<6 fields>)', {_EXAMPLES}"]


def check_schedule(expression: str) -> str:
    """The expression if AWS accepts it; otherwise `ValueError` listing every problem."""
    problems = schedule_problems(expression)
    if problems:
        joiner = " " if problems[0].startswith("is not") else ": "
        raise ValueError(f"{expression!r}{joiner}" + "; ".join(problems))
    return expression


# ---------------------------------------------------------------------------------------------------------------------
# The same grammar as a regular expression (for the JSON Schema)
# ---------------------------------------------------------------------------------------------------------------------


def _digits(low: str, high: str) -> list[str]:
    """Patterns for the numbers low..high, both written with the same number of digits."""
    if len(low) == 1:
        return [low if low == high else f"[{low}-{high}]"]
    if low[0] == high[0]:
        return [low[0] + rest for rest in _digits(low[1:], high[1:])]
    width = len(low) - 1
    parts = [low[0] + rest for rest in _digits(low[1:], "9" * width)]
    if int(high[0]) - int(low[0]) > 1:
        middle = _digits(str(int(low[0]) + 1), str(int(high[0]) - 1))[0]
        parts.append(middle + "[0-9]" * width)
    parts += [high[0] + rest for rest in _digits("0" * width, high[1:])]
    return parts


def number_pattern(low: int, high: int, *, leading_zero: bool = True) -> str:
    """An alternation matching low..high in decimal; with `leading_zero`, a single digit may carry one `0` (`05`)."""
    parts: list[str] = []
    for width in range(len(str(low)), len(str(high)) + 1):
        start = max(low, 10 ** (width - 1) if width > 1 else 0)
        end = min(high, 10**width - 1)
        if start <= end:
            found = _digits(str(start), str(end))
            parts += [f"0?{p}" for p in found] if width == 1 and leading_zero else found
    return "(?:" + "|".join(parts) + ")"


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


def _value_pattern(field: CronField) -> str:
    names = [_any_case(name) for name in field.names]
    return "(?:" + "|".join([number_pattern(field.low, field.high), *names]) + ")"


def _list_pattern(field: CronField) -> str:
    value = _value_pattern(field)
    base = rf"(?:\*|{value}(?:-{value})?)"
    item = base + (rf"(?:/{number_pattern(1, field.max_step)})?" if field.max_step else "")
    return f"(?:{item}(?:,{item})*)"


def _field_pattern(field: CronField, question: bool) -> str:
    """The field's pattern; `question` says whether the field is `?` (and only `?`) in this branch."""
    if question:
        return r"\?"
    value, last, weekday = _value_pattern(field), _any_case("L"), _any_case("W")
    alternatives = [_list_pattern(field)]
    if field.special == "dom":
        alternatives += [last, last + weekday, value + weekday]
    elif field.special == "dow":
        alternatives += [last, value + last, f"{value}#[1-{NTH_MAX}]"]
    return "(?:" + "|".join(alternatives) + ")"


def _cron_pattern() -> str:
    gap = " +"
    minutes, hours, dom, month, dow, year = FIELDS
    head = gap.join([_field_pattern(minutes, False), _field_pattern(hours, False)])
    # Exactly one of day-of-month and day-of-week is `?`.
    days = (
        f"(?:{_field_pattern(dom, True)}{gap}{_field_pattern(month, False)}{gap}{_field_pattern(dow, False)}"
        f"|{_field_pattern(dom, False)}{gap}{_field_pattern(month, False)}{gap}{_field_pattern(dow, True)})"
    )
    return rf"cron\({head}{gap}{days}{gap}{_field_pattern(year, False)}\)"


def _rate_pattern() -> str:
    one = "1 +(?:" + "|".join(RATE_UNITS) + ")"
    more = "(?:[2-9]|[1-9][0-9]+) +(?:" + "|".join(f"{unit}s" for unit in RATE_UNITS) + ")"
    return rf"rate\((?:{one}|{more})\)"


def anchored(pattern: str) -> str:
    """`pattern` matching the whole string, in ECMA-262 and in Python (whose `$` also matches before a final
    newline, hence the lookahead)."""
    return rf"^(?:{pattern})$(?!\n)"


SCHEDULE_PATTERN = anchored(f"{_rate_pattern()}|{_cron_pattern()}")
"""What `check_schedule` accepts, as one regular expression (for JSON Schema `pattern`)."""
