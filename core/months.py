"""The `--month YYYY-MM` argument shared by the monthly operator commands."""

import argparse
import datetime as dt
import re

MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_month(value: str) -> dt.date:
    """Parse YYYY-MM into the month's first day, or fail with a usage message."""
    match = MONTH_RE.match(value)
    if not match:
        raise argparse.ArgumentTypeError(f"{value!r} is not a month in the form YYYY-MM")
    return dt.date(int(match.group(1)), int(match.group(2)), 1)
