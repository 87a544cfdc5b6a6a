"""EventBridge Scheduler expressions: what AWS documents is accepted, each mistake is named field by field, and the
regular expression the JSON Schema carries accepts exactly what the parser accepts."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from components.schedules import SCHEDULE_PATTERN, check_schedule, number_pattern, schedule_problems

PATTERN = re.compile(SCHEDULE_PATTERN)
# The examples of AWS's cron reference and scheduled-rule guide, and the forms each wildcard row allows.
ACCEPTED = [
    "rate(1 minute)",
    "rate(5 minutes)",
    "rate(1 hour)",
    "rate(12 hours)",
    "rate(1 day)",
    "rate(7 days)",
    "cron(0 10 * * ? *)",
    "cron(15 12 * * ? *)",
    "cron(0 18 ? * MON-FRI *)",
    "cron(0 8 1 * ? *)",
    "cron(0/15 * * * ? *)",
    "cron(0/10 * ? * MON-FRI *)",
    "cron(0/5 8-17 ? * MON-FRI *)",
    "cron(0 9 ? * 2#1 *)",
    "cron(0 2 L * ? *)",
    "cron(0 2 LW * ? *)",
    "cron(0 2 15W * ? *)",
    "cron(0 12 ? * 6L *)",
    "cron(0 12 ? * L *)",
    "cron(0 0 1 JAN,JUL ? 2025-2030)",
    "cron(5,35 14 * * ? *)",
    "cron(*/20 * * * ? *)",
    "cron(0 22-2 ? * FRI-MON *)",
    "cron(00 05 * * ? *)",
    "cron(0 2 * * ? 2199)",
    "cron(0 12 ? * mon-fri *)",
]


@pytest.mark.parametrize("expression", ACCEPTED)
def test_what_aws_documents_is_accepted(expression: str) -> None:
    assert schedule_problems(expression) == []
    assert check_schedule(expression) == expression
    assert PATTERN.search(expression), "the JSON Schema accepts it too"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cron(0 25 * * ? *)", "'cron(0 25 * * ? *)': hours: 25 is outside 0-23"),
        (
            "cron(99 99 99 99 ? 9999)",
            "'cron(99 99 99 99 ? 9999)': minutes: 99 is outside 0-59; hours: 99 is outside 0-23; day-of-month: 99 is "
            "outside 1-31; month: 99 is outside 1-12 or JAN-DEC; year: 9999 is outside 1970-2199",
        ),
        ("cron(0 2 * * *)", "cron takes 6 fields (minutes hours day-of-month month day-of-week year), got 5"),
        ("cron(0 2 * * * *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(0 2 ? * ? *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(? 2 * * ? *)", "minutes: '?' is only allowed in day-of-month or day-of-week"),
        ("cron(0 2 ? * MON/2 *)", "day-of-week: takes no '/' step"),
        ("cron(0/0 * * * ? *)", "minutes: the step in '0/0' must be a whole number from 1 to 59"),
        ("cron(0/60 * * * ? *)", "minutes: the step in '0/60' must be a whole number from 1 to 59"),
        ("cron(0 2 ? * 3#6 *)", "day-of-week: in '3#6' the n of <day>#<n> must be 1-5"),
        ("cron(0 2 ? * 3#1,6#3 *)", "day-of-week: '3#1' stands alone in its field, not in a list"),
        ("cron(0 2 L,15 * ? *)", "day-of-month: 'L' stands alone in its field, not in a list"),
        ("cron(0 2 32W * ? *)", "day-of-month: 32 is outside 1-31"),
        ("cron(0 2 * JANUARY ? *)", "month: 'JANUARY' is not a value; allowed: 1-12 or JAN-DEC"),
        ("cron(0 2 * * ? 1969)", "year: 1969 is outside 1970-2199"),
        ("cron(007 2 * * ? *)", "minutes: '007' is not a value; allowed: 0-59"),
        ("cron( 0 2 * * ? *)", "no space after 'cron(' or before ')'"),
        ("rate(0 minutes)", "the value '0' must be a whole number of at least 1"),
        ("rate(1 hours)", "AWS wants the singular unit for 1, e.g. 'rate(1 hour)'"),
        ("rate(5 minute)", "AWS wants the plural unit above 1, e.g. 'rate(5 minutes)'"),
        ("rate(3 weeks)", "the unit 'weeks' is not minute(s), hour(s) or day(s)"),
        ("rate(1hour)", "a rate is 'rate(<n> <unit>)'"),
        ("at(2030-01-01T00:00:00)", "a one-time at() schedule would run the pipeline once"),
        ("every hour", "'every hour' is not a schedule: use 'rate(<n> <minutes|hours|days>)' or 'cron(<6 fields>)'"),
    ],
)
def test_each_mistake_is_named(expression: str, expected: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_schedule(expression)
    assert expected in str(caught.value)


def test_every_problem_of_an_expression_is_reported_not_only_the_first() -> None:
    assert len(schedule_problems("cron(61 24 0 13 ? 1900)")) == 5


# ---------------------------------------------------------------------------------------------------------------------
# The JSON Schema's pattern agrees with the parser
# ---------------------------------------------------------------------------------------------------------------------

TOKENS = [
    "*", "?", "L", "W", "LW", "#", "/", "-", ",", " ", "  ", "0", "1", "2", "5", "7", "8", "9", "00", "05", "007",
    "12", "13", "15", "23", "24", "31", "32", "59", "60", "229", "230", "1969", "1970", "2199", "2200", "MON",
    "fri", "Sat", "SUN", "JAN", "dec", "JANUARY", "l", "w", "x", "\n", "é",
]  # fmt: skip
field = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=4).map("".join)


def near(low: int, high: int, names: tuple[str, ...] = (), special: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    """A field that is mostly valid (values in range, sometimes just outside it, ranges, steps, lists) and sometimes
    noise, so that both sides of the property come up."""
    inside = st.integers(low, high).map(str)
    value = st.one_of(inside, inside, inside, st.integers(low - 2, high + 2).map(str), st.sampled_from(names or ["*"]))
    item = st.one_of(st.just("*"), value, st.tuples(value, value).map("-".join))
    stepped = st.tuples(item, st.integers(0, high + 1)).map(lambda pair: f"{pair[0]}/{pair[1]}")
    listed = st.lists(st.one_of(item, item, stepped), min_size=1, max_size=3).map(",".join)
    forms = [st.sampled_from(special)] if special else []
    return st.one_of(listed, listed, listed, *forms, field)


day_of_month = near(1, 31, special=("L", "LW", "15W", "32W", "L,3"))
day_of_week = near(1, 7, names=("MON", "fri"), special=("L", "6L", "FRIL", "2#1", "3#6"))
days = st.one_of(
    st.tuples(st.just("?"), day_of_week),
    st.tuples(day_of_month, st.just("?")),
    st.tuples(day_of_month, day_of_week),
)
cron = st.tuples(near(0, 59), near(0, 23), days, near(1, 12, names=("JAN", "jul", "DEC")), near(1970, 2199)).map(
    lambda f: f"cron({f[0]} {f[1]} {f[2][0]} {f[3]} {f[2][1]} {f[4]})"
)
rate = st.tuples(
    st.sampled_from(["0", "1", "2", "01", "10", "x"]),
    st.sampled_from(["minute", "minutes", "hour", "hours", "day", "days", "week", "hour "]),
).map(lambda pair: f"rate({pair[0]} {pair[1]})")


@settings(max_examples=3000, deadline=None)
@given(st.one_of(st.sampled_from(ACCEPTED), cron, rate, st.text(max_size=30)))
@example("cron(0 2 * * ? *)\n")
@example("rate(1 hour)\n")
def test_the_schema_pattern_accepts_exactly_what_the_parser_accepts(expression: str) -> None:
    assert (PATTERN.search(expression) is not None) == (schedule_problems(expression) == [])


@given(st.integers(0, 3000), st.integers(0, 3000), st.integers(0, 3000))
def test_number_patterns_match_exactly_their_range(low: int, high: int, probe: int) -> None:
    low, high = min(low, high), max(low, high)
    assert bool(re.fullmatch(number_pattern(low, high, leading_zero=False), str(probe))) == (low <= probe <= high)
