"""Reads of the analytics rollup: an agent's metrics per day, week or month, and an owner's
summary across agents.

Every read is a few indexed range queries over `agent_activity_days` (one row per agent, day
and channel), `agent_activity_users` (distinct end users) and `agent_usage` (one row per
agent and day): the cost follows the days asked for and the end users active in them,
never the number of messages. Percentiles come from histograms summed bucket by bucket.
"""

import datetime as dt
import math
import uuid
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import accumulate
from operator import add
from typing import Any

from django.db import connection

from conversations.models import RESPONSE_BUCKETS

GRANULARITIES = ("day", "week", "month")
COUNTERS = (
    "conversations_started", "conversations_answered", "active_conversations",
    "user_messages", "agent_messages", "system_messages", "tool_messages",
)  # fmt: skip
USAGE_COUNTERS = ("message_count", "api_calls", "compute_seconds")


def bucket_seconds(index: int) -> float:
    """The value reported for a histogram bucket: its geometric middle, in seconds (within
    about 9% of any time in the bucket)."""
    return 2 ** ((index + 0.5) / 4) - 1


def percentile_seconds(buckets: Sequence[int], fraction: float) -> float | None:
    """The `fraction` percentile (nearest rank) of a histogram; None when it is empty."""
    return percentiles_seconds(buckets, (fraction,))[0]


def percentiles_seconds(buckets: Sequence[int], fractions: Sequence[float]) -> list[float | None]:
    """Several percentiles of one histogram (one running sum, a binary search each)."""
    running = list(accumulate(buckets))
    total = running[-1] if running else 0
    if not total:
        return [None] * len(fractions)
    return [
        round(bucket_seconds(bisect_left(running, max(1, math.ceil(fraction * total)))), 3)
        for fraction in fractions
    ]


def period_start(day: dt.date, granularity: str) -> dt.date:
    if granularity == "week":
        return day - dt.timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


def periods(start: dt.date, end: dt.date, granularity: str) -> list[dt.date]:
    """The first day of every period that meets [start, end]."""
    found: list[dt.date] = []
    day = start
    while day <= end:
        first = period_start(day, granularity)
        if not found or found[-1] != first:
            found.append(first)
        day += dt.timedelta(days=1)
    return found


def period_end(first: dt.date, granularity: str) -> dt.date:
    if granularity == "week":
        return first + dt.timedelta(days=6)
    if granularity == "month":
        following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return following - dt.timedelta(days=1)
    return first


@dataclass
class Metrics:
    """One period's metrics, added up from rollup rows."""

    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    response_buckets: list[int] = field(default_factory=lambda: [0] * RESPONSE_BUCKETS)
    first_response_buckets: list[int] = field(default_factory=lambda: [0] * RESPONSE_BUCKETS)
    end_users: int = 0
    usage: dict[str, Any] | None = None

    def add_row(self, row: dict[str, Any]) -> None:
        for name in COUNTERS:
            self.counters[name] += row[name]
        if row["responses"]:
            self.response_buckets = list(map(add, self.response_buckets, row["response_buckets"]))
        if row["first_responses"]:
            self.first_response_buckets = list(
                map(add, self.first_response_buckets, row["first_response_buckets"])
            )

    def merge(self, other: "Metrics") -> None:
        """Add another set of agents' metrics (whose end users are not these)."""
        self.add_row({**other.counters, "responses": 1, "first_responses": 1,
                      "response_buckets": other.response_buckets,
                      "first_response_buckets": other.first_response_buckets})  # fmt: skip
        self.end_users += other.end_users
        if other.usage is not None:
            self.add_usage(other.usage)

    def add_usage(self, row: dict[str, Any]) -> None:
        if self.usage is None:
            self.usage = {**dict.fromkeys(USAGE_COUNTERS, 0), "estimated_cost": Decimal(0)}
        for name in (*USAGE_COUNTERS, "estimated_cost"):
            self.usage[name] += row[name] or 0

    def as_dict(self) -> dict[str, Any]:
        c = self.counters
        messages = {
            "user": c["user_messages"],
            "agent": c["agent_messages"],
            "system": c["system_messages"],
            "tool": c["tool_messages"],
        }
        return {
            "conversations_started": c["conversations_started"],
            "conversations_without_reply": c["conversations_started"] - c["conversations_answered"],
            "active_conversations": c["active_conversations"],
            "end_users": self.end_users,
            "messages": {**messages, "total": sum(messages.values())},
            "response_time": _times(self.response_buckets),
            "first_response_time": _times(self.first_response_buckets),
            "usage": self.usage,
        }


def _times(buckets: list[int]) -> dict[str, Any]:
    p50, p95 = percentiles_seconds(buckets, (0.5, 0.95))
    return {"count": sum(buckets), "p50_seconds": p50, "p95_seconds": p95}


def _fetch(query: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(query, parameters)
        names = [column.name for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


ROLLUP_ROWS_SQL = """
SELECT agent_id, day, {counters}, end_users, responses, first_responses,
       response_buckets, first_response_buckets
FROM agent_activity_days
WHERE agent_id = ANY(%(agents)s) AND day BETWEEN %(start)s AND %(end)s
  AND (%(channel)s::text IS NULL OR channel = %(channel)s::text)
""".format(counters=", ".join(COUNTERS))

# Distinct end users per agent and period (weeks and months; a day's count is in its rollup
# row), and per agent over the range: hashed DISTINCT, then a count. An end user is an
# external_user_id on one channel of one agent (ids come from the channel).
END_USERS_BY_PERIOD_SQL = """
SELECT agent_id, period, COUNT(*) AS end_users FROM (
    SELECT DISTINCT agent_id, CASE %(granularity)s::text
               WHEN 'week' THEN date_trunc('week', day)::date
               ELSE date_trunc('month', day)::date END AS period, channel, external_user_id
    FROM agent_activity_users
    WHERE agent_id = ANY(%(agents)s) AND day BETWEEN %(start)s AND %(end)s
      AND (%(channel)s::text IS NULL OR channel = %(channel)s::text)
) users
GROUP BY agent_id, period
"""
END_USERS_SQL = """
SELECT agent_id, COUNT(*) AS end_users FROM (
    SELECT DISTINCT agent_id, channel, external_user_id FROM agent_activity_users
    WHERE agent_id = ANY(%(agents)s) AND day BETWEEN %(start)s AND %(end)s
      AND (%(channel)s::text IS NULL OR channel = %(channel)s::text)
) users
GROUP BY agent_id
"""

USAGE_ROWS_SQL = """
SELECT agent_id, date AS day, message_count, api_calls, compute_seconds, estimated_cost
FROM agent_usage
WHERE agent_id = ANY(%(agents)s) AND date BETWEEN %(start)s AND %(end)s
"""


@dataclass
class AnalyticsReport:
    periods: list[dict[str, Any]]
    totals: dict[str, Any]
    agents: dict[uuid.UUID, dict[str, Any]]


def analytics_report(
    *,
    agent_ids: Iterable[uuid.UUID],
    start: dt.date,
    end: dt.date,
    granularity: str = "day",
    channel: str | None = None,
    per_period: bool = True,
) -> AnalyticsReport:
    """Metrics of the agents over [start, end] (UTC days): per period of the granularity
    (all agents together), per agent over the range, and over everything.

    Usage (`agent_usage`) is per agent and day, not per channel: with a channel it is None.
    """
    agents = list(agent_ids)
    parameters = {
        "agents": agents, "start": start, "end": end, "channel": channel,
        "granularity": granularity,
    }  # fmt: skip
    by_period: dict[dt.date, Metrics] = defaultdict(Metrics)
    by_agent: dict[uuid.UUID, Metrics] = defaultdict(Metrics)
    if per_period:
        for first in periods(start, end, granularity):
            by_period[first] = Metrics()
    for agent_id in agents:
        by_agent[agent_id] = Metrics()

    # One agent's periods add up to the agent: its rows are added once, to their period.
    agent_from_periods = per_period and len(agents) == 1
    for row in _fetch(ROLLUP_ROWS_SQL, parameters):
        if per_period:
            period = by_period[period_start(row["day"], granularity)]
            period.add_row(row)
            if granularity == "day":
                period.end_users += row["end_users"]  # a day's rows are one per channel
        if not agent_from_periods:
            by_agent[row["agent_id"]].add_row(row)
    if agent_from_periods:
        (only,) = by_agent.values()
        for metrics in by_period.values():
            only.merge(metrics)
        only.end_users = 0  # the periods' users are not distinct across periods
    for row in _fetch(END_USERS_SQL, parameters):
        by_agent[row["agent_id"]].end_users = row["end_users"]
    if per_period and granularity != "day":
        for row in _fetch(END_USERS_BY_PERIOD_SQL, parameters):
            # Several agents in one period: their users are told apart by agent.
            by_period[row["period"]].end_users += row["end_users"]
    if channel is None:
        for metrics in (*by_period.values(), *by_agent.values()):
            metrics.usage = {**dict.fromkeys(USAGE_COUNTERS, 0), "estimated_cost": Decimal(0)}
        for row in _fetch(USAGE_ROWS_SQL, parameters):
            if per_period:
                by_period[period_start(row["day"], granularity)].add_usage(row)
            by_agent[row["agent_id"]].add_usage(row)
    if len(by_agent) == 1:
        (total,) = by_agent.values()
    else:
        total = Metrics()
        if channel is None:
            total.usage = {**dict.fromkeys(USAGE_COUNTERS, 0), "estimated_cost": Decimal(0)}
        for metrics in by_agent.values():
            total.merge(metrics)

    return AnalyticsReport(
        periods=[
            {
                "period_start": max(first, start),
                "period_end": min(period_end(first, granularity), end),
                **metrics.as_dict(),
            }
            for first, metrics in sorted(by_period.items())
        ],
        totals=total.as_dict(),
        agents={agent_id: metrics.as_dict() for agent_id, metrics in by_agent.items()},
    )


# --- rankings for staff ----------------------------------------------------------------------

RANK_BY_VOLUME_SQL = """
SELECT d.agent_id, a.handle, a.name,
       SUM(user_messages + agent_messages + system_messages + tool_messages) AS messages,
       SUM(responses) AS responses
FROM agent_activity_days d JOIN a1_agents a ON a.id = d.agent_id
WHERE d.day BETWEEN %(start)s AND %(end)s
GROUP BY d.agent_id, a.handle, a.name
ORDER BY messages DESC, d.agent_id
LIMIT %(limit)s
"""

# Each agent's histogram summed over the range (only the non-empty buckets are unnested),
# then the bucket where the running count reaches 95% (nearest rank).
RANK_BY_SLOWEST_SQL = """
WITH buckets AS (
    SELECT d.agent_id, u.slot, SUM(u.n) AS n
    FROM agent_activity_days d,
         unnest(d.response_buckets) WITH ORDINALITY AS u(n, slot)
    WHERE d.day BETWEEN %(start)s AND %(end)s AND d.responses > 0 AND u.n > 0
    GROUP BY d.agent_id, u.slot
),
running AS (
    SELECT agent_id, slot,
           SUM(n) OVER (PARTITION BY agent_id ORDER BY slot) AS seen,
           SUM(n) OVER (PARTITION BY agent_id) AS total
    FROM buckets
),
p95 AS (
    SELECT agent_id, MIN(slot) AS slot, MAX(total) AS responses
    FROM running WHERE seen >= CEIL(0.95 * total)
    GROUP BY agent_id HAVING MAX(total) >= %(min_responses)s
)
SELECT p.agent_id, a.handle, a.name, p.slot, p.responses
FROM p95 p JOIN a1_agents a ON a.id = p.agent_id
ORDER BY p.slot DESC, p.responses DESC, p.agent_id
LIMIT %(limit)s
"""


def agents_ranked_by_volume(
    *, start: dt.date, end: dt.date, limit: int = 50
) -> list[dict[str, Any]]:
    """The agents with the most messages over [start, end], most first."""
    return _fetch(RANK_BY_VOLUME_SQL, {"start": start, "end": end, "limit": limit})


def agents_ranked_by_slowest_response(
    *, start: dt.date, end: dt.date, limit: int = 50, min_responses: int = 10
) -> list[dict[str, Any]]:
    """The agents whose 95th percentile response time over [start, end] is the longest,
    among those with at least `min_responses` responses."""
    rows = _fetch(
        RANK_BY_SLOWEST_SQL,
        {"start": start, "end": end, "limit": limit, "min_responses": min_responses},
    )
    for row in rows:
        row["p95_seconds"] = round(bucket_seconds(row.pop("slot") - 1), 3)
    return rows
