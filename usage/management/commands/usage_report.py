import csv
import datetime as dt
import json
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from core.months import parse_month
from usage.selectors import REPORT_COLUMNS, usage_report_rows


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value if value is None or isinstance(value, int | float | str) else str(value)


class Command(BaseCommand):
    help = (
        "Stream every agent's usage totals for a month, by user, to stdout as CSV or JSON "
        "(an array of objects). Memory stays constant however many agents there are."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--month", required=True, type=parse_month, help="YYYY-MM")
        parser.add_argument("--format", choices=["csv", "json"], default="csv")

    def handle(self, *args: Any, **options: Any) -> None:
        rows = usage_report_rows(options["month"])
        if options["format"] == "csv":
            writer = csv.writer(self.stdout, lineterminator="\n")
            writer.writerow(REPORT_COLUMNS)
            for row in rows:
                writer.writerow(row)
            return
        self.stdout.write("[", ending="")
        for index, row in enumerate(rows):
            record = {
                column: _json_value(value)
                for column, value in zip(REPORT_COLUMNS, row, strict=True)
            }
            self.stdout.write(("," if index else "") + "\n" + json.dumps(record), ending="")
        self.stdout.write("\n]")
