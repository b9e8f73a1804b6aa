"""Reads of usage: an agent's days, an owner's month, and the rows of the monthly report."""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection
from django.db.models import DateField, OuterRef, QuerySet, Subquery
from django.utils import timezone

from agents.selectors import REACHABLE_BY_OWNER_SQL
from billing.rules import overage_cost, overage_messages
from billing.selectors import plan_for_user
from core.months import format_month, month_bounds
from usage.models import AgentUsage, UserMonthlyUsage

ZERO = Decimal("0")


def usage_days_for_agent(agent_id: Any, *, start: dt.date, end: dt.date) -> QuerySet[AgentUsage]:
    """The agent's daily rows between two dates, inclusive, oldest first."""
    return AgentUsage.objects.filter(agent_id=agent_id, date__range=(start, end)).order_by("date")


@dataclass(frozen=True)
class MonthSummary:
    month: str
    plan: str
    agents: list[dict[str, Any]]
    totals: dict[str, Any]
    included_messages: int | None
    messages_used: int
    quota_used_percent: float | None
    hard_cap: bool
    projected_messages: int
    projected_overage_messages: int
    projected_overage_cost: Decimal
    currency: str


TOTAL_FIELDS = ("messages", "api_calls", "compute_seconds", "storage_bytes", "estimated_cost")


def _agent_month_totals(
    owner_id: str, first: dt.date, after: dt.date, *, viewer_id: str | None
) -> list[dict[str, Any]]:
    """Per-agent totals of the month in one aggregation query, agents without usage included;
    with `viewer_id` only the agents that user may see (`REACHABLE_BY_OWNER_SQL`)."""
    visible = "" if viewer_id is None else f"AND {REACHABLE_BY_OWNER_SQL}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT a.id, a.handle, a.name, a.status,
                   COALESCE(SUM(u.message_count), 0), COALESCE(SUM(u.api_calls), 0),
                   COALESCE(SUM(u.compute_seconds), 0), COALESCE(MAX(u.storage_bytes), 0),
                   COALESCE(SUM(u.estimated_cost), 0)
            FROM a1_agents a
            LEFT JOIN agent_usage u ON u.agent_id = a.id AND u.date >= %(first)s
                                       AND u.date < %(after)s
            WHERE a.owner_id = %(owner)s {visible}
            GROUP BY a.id
            ORDER BY a.created_at, a.id
            """,  # noqa: S608 - constants; the ids are parameters
            {"first": first, "after": after, "owner": owner_id, "user": viewer_id},
        )
        columns = ("agent", "handle", "name", "status", *TOTAL_FIELDS)
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def month_messages_used(owner_id: str, month: dt.date) -> int:
    """The owner's messages of the month counted toward the quota (its running counter)."""
    counter = UserMonthlyUsage.objects.filter(user_id=owner_id, month=month)
    return counter.values_list("message_count", flat=True).first() or 0


def _projected(used: int, month: dt.date, today: dt.date) -> int:
    """Messages the month will end with at today's pace (the actual count once it is over)."""
    first, after = month_bounds(month)
    if today >= after:
        return used
    if today < first:
        return 0
    days_in_month = (after - first).days
    elapsed = (today - first).days + 1
    return int((Decimal(used) * days_in_month / elapsed).to_integral_value(ROUND_HALF_UP))


def usage_month_summary(
    owner_id: str, month: dt.date, *, viewer_id: str | None = None
) -> MonthSummary:
    """The owner's month: per-agent totals, quota use and the projected overage.

    With `viewer_id` (the user reading a team's month) the agents, and the totals summed
    from them, are those the user may see (a member left off a restricted agent does not
    see it); the quota use and the projection are the account's, whole.
    """
    first, after = month_bounds(month)
    agents = _agent_month_totals(owner_id, first, after, viewer_id=viewer_id)
    totals: dict[str, Any] = {
        field: sum((agent[field] for agent in agents), ZERO if field == "estimated_cost" else 0)
        for field in TOTAL_FIELDS
    }
    totals["storage_bytes"] = max((agent["storage_bytes"] for agent in agents), default=0)

    plan = plan_for_user(owner_id)
    used = month_messages_used(owner_id, first)
    included = plan.max_messages_per_month
    projected = _projected(used, first, timezone.now().date())
    overage = overage_messages(plan, projected)
    return MonthSummary(
        month=format_month(first),
        plan=plan.id,
        agents=agents,
        totals=totals,
        included_messages=included,
        messages_used=used,
        quota_used_percent=round(100 * used / included, 2) if included else None,
        hard_cap=plan.messages_hard_cap,
        projected_messages=projected,
        projected_overage_messages=overage,
        projected_overage_cost=overage_cost(plan, overage),
        currency=plan.currency or "USD",
    )


REPORT_COLUMNS = (
    "user_id", "agent_id", "handle", "agent_type", "status", "days_active", "messages",
    "api_calls", "compute_seconds", "max_storage_bytes", "estimated_cost",
)  # fmt: skip


def usage_report_rows(month: dt.date, *, batch_size: int = 2000) -> Iterator[tuple[Any, ...]]:
    """Every agent's totals for the month, by user, read through a server-side cursor.

    Memory stays constant whatever the number of agents: rows are fetched in batches.
    """
    first, after = month_bounds(month)
    with connection.chunked_cursor() as cursor:
        cursor.execute(
            """
            SELECT a.owner_id, a.id, a.handle, a.agent_type, a.status, COUNT(u.date),
                   SUM(u.message_count), SUM(u.api_calls), SUM(u.compute_seconds),
                   MAX(u.storage_bytes), SUM(u.estimated_cost)
            FROM agent_usage u
            JOIN a1_agents a ON a.id = u.agent_id
            WHERE u.date >= %s AND u.date < %s
            GROUP BY a.owner_id, a.id
            ORDER BY a.owner_id, a.id
            """,
            [first, after],
        )
        while rows := cursor.fetchmany(batch_size):
            yield from rows


@dataclass(frozen=True)
class AgentUsageDays:
    """An agent's usage from `start` to `end`: messages on each day (0 on a day without a
    row) and the period's totals."""

    start: dt.date
    end: dt.date
    messages_per_day: list[tuple[dt.date, int]]
    messages: int
    api_calls: int
    compute_seconds: int
    estimated_cost: Decimal | int


def agent_usage_days(agent_id: Any, *, start: dt.date, end: dt.date) -> AgentUsageDays:
    """Every day of the period, in one query."""
    rows = list(usage_days_for_agent(agent_id, start=start, end=end))
    messages = {row.date: row.message_count or 0 for row in rows}
    days = (start + dt.timedelta(days=offset) for offset in range((end - start).days + 1))
    return AgentUsageDays(
        start=start,
        end=end,
        messages_per_day=[(day, messages.get(day, 0)) for day in days],
        messages=sum(messages.values()),
        api_calls=sum(row.api_calls or 0 for row in rows),
        compute_seconds=sum(row.compute_seconds or 0 for row in rows),
        estimated_cost=sum((row.estimated_cost or 0 for row in rows), 0),
    )


def last_usage_day_column(agent_id_field: str) -> Subquery:
    """The latest day with usage of the agent named by the outer row's `agent_id_field`."""
    days = AgentUsage.objects.filter(agent_id=OuterRef(agent_id_field)).order_by("-date")
    return Subquery(days.values("date")[:1], output_field=DateField())
