"""Calendar months: the `YYYY-MM` text the API and the operator commands take, and a month's
bounds. A month is its first day; its usage is every day from that one to the next month's
first, excluded."""

import argparse
import datetime as dt
import re

from django.utils import timezone

MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
YEARS = range(2000, 3000)


class InvalidMonth(ValueError, argparse.ArgumentTypeError):
    """Text that is not a month; as an argparse type error its message is the usage error."""


def parse_month(value: str) -> dt.date:
    """Parse YYYY-MM (a year 2000 to 2999) into the month's first day, or raise InvalidMonth."""
    match = MONTH_RE.match(value)
    if not match:
        raise InvalidMonth(f"{value!r} is not a month in the form YYYY-MM")
    if int(match[1]) not in YEARS:
        raise InvalidMonth("Year out of range.")
    return dt.date(int(match[1]), int(match[2]), 1)


def format_month(month: dt.date) -> str:
    """The month as YYYY-MM, as it names a billing period."""
    return month.strftime("%Y-%m")


def first_of_month(day: dt.date) -> dt.date:
    return day.replace(day=1)


def current_month() -> dt.date:
    """The first day of today's month (UTC, like the usage days)."""
    return first_of_month(timezone.now().date())


def month_bounds(month: dt.date) -> tuple[dt.date, dt.date]:
    """The first day of the month `month` falls in, and the first day of the next."""
    first = first_of_month(month)
    return first, first_of_month(first + dt.timedelta(days=31))
