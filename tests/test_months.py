"""core.months: the one parser of YYYY-MM and the one definition of a month's bounds."""

import argparse
import datetime as dt

import pytest

from core.months import format_month, month_bounds, parse_month


@pytest.mark.parametrize(
    ("day", "bounds"),
    [
        (dt.date(2026, 9, 1), (dt.date(2026, 9, 1), dt.date(2026, 10, 1))),
        (dt.date(2026, 12, 31), (dt.date(2026, 12, 1), dt.date(2027, 1, 1))),
        (dt.date(2024, 2, 15), (dt.date(2024, 2, 1), dt.date(2024, 3, 1))),
        (dt.date(2026, 1, 31), (dt.date(2026, 1, 1), dt.date(2026, 2, 1))),
    ],
)
def test_a_month_runs_from_its_first_day_to_the_next_months_first(
    day: dt.date, bounds: tuple[dt.date, dt.date]
) -> None:
    assert month_bounds(day) == bounds


def test_parse_month_reads_what_format_month_writes() -> None:
    assert parse_month("2026-09") == dt.date(2026, 9, 1)
    assert format_month(dt.date(2026, 9, 17)) == "2026-09"


@pytest.mark.parametrize("text", ["2026-13", "2026-9", "september", "1999-01", "9999-12", ""])
def test_parse_month_refuses_what_is_not_a_month_the_api_or_a_command_takes(text: str) -> None:
    parser = argparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("--month", type=parse_month)

    with pytest.raises(ValueError, match=r"not a month|Year out of range"):
        parse_month(text)
    with pytest.raises(argparse.ArgumentError, match=r"not a month|Year out of range"):
        parser.parse_args(["--month", text])
