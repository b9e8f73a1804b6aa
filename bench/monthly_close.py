"""The monthly close through Django vs the same totals in one hand-written SQL aggregation.

- `close_period_record` (invoicing.closing, the real close: INSERT_SQL, one ledger row per
  account; the month's rows are deleted, untimed, before each repetition so every one writes
  them all);
- `period_charges` (what `--dry-run` reads: CLOSE_SQL through Django's cursor);
- CLOSE_SQL through psycopg without Django (the same query: Django's own cost);
- the database floor: the month's counters (`user_monthly_usage`, which generate_demo_data
  writes to match its `agent_usage` rows) joined to the agents each account owns with usage
  rows in the month (one row per agent first, then per owner: no COUNT(DISTINCT), so no sort
  of every usage row), priced the same way. Its totals are checked against the close's.
"""

import datetime as dt
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

FLOOR_SQL = """
WITH counted AS (
    SELECT user_id, message_count AS messages
    FROM user_monthly_usage
    WHERE month = %(first)s
),
used AS (
    SELECT agent_id FROM agent_usage
    WHERE date >= %(first)s AND date < %(after)s
    GROUP BY agent_id
),
owned AS (
    SELECT a.owner_id AS user_id, COUNT(*) AS agents
    FROM used JOIN a1_agents a ON a.id = used.agent_id
    GROUP BY a.owner_id
),
per_user AS (
    SELECT user_id, COALESCE(o.agents, 0) AS agents, COALESCE(c.messages, 0) AS messages
    FROM counted c FULL JOIN owned o USING (user_id)
)
SELECT u.user_id, u.agents, u.messages,
       ROUND(CASE WHEN p.messages_hard_cap OR p.max_messages_per_month IS NULL THEN 0
                  ELSE GREATEST(u.messages - p.max_messages_per_month, 0) END
             * p.overage_price_per_message, 2) AS amount
FROM per_user u
LEFT JOIN user_subscriptions s ON s.user_id = u.user_id
JOIN subscription_plans p ON p.id = COALESCE(s.plan_id, 'free')
"""


@dataclass(frozen=True)
class CloseTimings:
    usage_rows: int
    users: int
    record_ms: float
    dry_run_ms: float
    close_sql_raw_ms: float
    floor_ms: float
    totals_match: bool
    overage_users: int
    amount: Decimal


def _median_ms(
    action: Callable[[], Any], repeat: int, before: Callable[[], Any] | None = None
) -> tuple[float, Any]:
    """Median time of `action` over `repeat` runs; `before` runs untimed before each."""
    timings, result = [], None
    for _ in range(repeat):
        if before is not None:
            before()
        started = time.perf_counter()
        result = action()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), result


def measure(month: dt.date, repeat: int = 3) -> CloseTimings:
    import psycopg
    from django.conf import settings
    from django.db import connection

    from invoicing.closing import (
        CLOSE_SQL,
        PERIOD_CLOSED,
        close_period_record,
        month_bounds,
        period_charges,
    )

    first, after = month_bounds(month)
    period = first.strftime("%Y-%m")
    parameters = {"first": first, "after": after}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM agent_usage WHERE date >= %s AND date < %s", [first, after]
        )
        usage_rows = int(cursor.fetchone()[0])

    def forget_period() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM billing_events WHERE event_type = %s AND metadata ->> 'period' = %s",
                [PERIOD_CLOSED, period],
            )

    def record() -> int:
        return close_period_record(month)

    database = settings.DATABASES["default"]
    raw = psycopg.connect(
        dbname=database["NAME"], user=database["USER"], host=database["HOST"],
        port=database["PORT"] or 5432,
    )  # fmt: skip
    try:
        # One untimed pass of each warms the caches the same way for all.
        forget_period()
        record()
        list(period_charges(month))
        raw.execute(FLOOR_SQL, parameters).fetchall()
        record_ms, _ = _median_ms(record, repeat, before=forget_period)
        dry_run_ms, charges = _median_ms(lambda: list(period_charges(month)), repeat)
        raw_ms, _ = _median_ms(lambda: raw.execute(CLOSE_SQL, parameters).fetchall(), repeat)
        floor_ms, floor_rows = _median_ms(
            lambda: raw.execute(FLOOR_SQL, parameters).fetchall(), repeat
        )
    finally:
        raw.close()
    close_totals = (
        len(charges), sum(c.messages for c in charges), sum(c.agents for c in charges),
        sum((c.amount for c in charges), Decimal(0)),
    )  # fmt: skip
    floor_totals = (
        len(floor_rows), sum(r[2] for r in floor_rows), sum(r[1] for r in floor_rows),
        sum((r[3] for r in floor_rows), Decimal(0)),
    )  # fmt: skip
    return CloseTimings(
        usage_rows=usage_rows,
        users=len(charges),
        record_ms=record_ms,
        dry_run_ms=dry_run_ms,
        close_sql_raw_ms=raw_ms,
        floor_ms=floor_ms,
        totals_match=close_totals == floor_totals,
        overage_users=sum(1 for c in charges if c.amount > 0),
        amount=close_totals[3],
    )
