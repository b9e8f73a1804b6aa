"""The monthly close: bill each user's messages past their plan's included amount, once.

1. One aggregation query sums the month's `agent_usage` per user and prices the overage with
   the user's plan (hard-capped plans and plans without a quota have none).
2. One INSERT … SELECT writes a `usage_period_closed` ledger row per user and month;
   a unique index on (user_id, period) makes a re-run insert nothing.
3. After that commits, each row with an amount and no Stripe invoice item yet gets one,
   created with an idempotency key derived from user and month, and its id is stored on the
   row. An interrupted run resumes here: a row is sent at most once, a retry finds Stripe's
   first answer.

Paused and archived agents accrue no usage (their apps are refused), so their days cost
nothing. The plan used is the user's plan at the time of the close.
"""

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction

from billing.models import BillingEvent, BillingEventType
from billing.rules import overage_cost_sql, overage_messages_sql, plan_of_user_sql
from core.months import format_month, month_bounds
from invoicing.stripe_gateway import options as stripe_options
from invoicing.stripe_gateway import stripe_client, stripe_configured, stripe_errors

PERIOD_CLOSED = BillingEventType.USAGE_PERIOD_CLOSED

# Per user: the month's messages, the plan's included amount and the priced overage
# (billing.rules prices it, as it does the usage summary's projection).
CLOSE_SQL = f"""
SELECT u.user_id, s.id AS subscription_id, p.id AS plan_id,
       COALESCE(p.currency, 'USD') AS currency, u.agents, u.messages,
       p.max_messages_per_month AS included, o.overage_messages,
       {overage_cost_sql("o.overage_messages")} AS amount,
       s.stripe_customer_id
FROM (
    -- Sum per agent first, then per owner: no COUNT(DISTINCT), which would sort every
    -- usage row of the month.
    SELECT a.owner_id AS user_id, COUNT(*) AS agents, SUM(per_agent.messages)::bigint AS messages
    FROM (
        SELECT agent_id, SUM(COALESCE(message_count, 0)) AS messages
        FROM agent_usage
        WHERE date >= %(first)s AND date < %(after)s
        GROUP BY agent_id
    ) per_agent
    JOIN a1_agents a ON a.id = per_agent.agent_id
    GROUP BY a.owner_id
) u
{plan_of_user_sql("u.user_id")}
CROSS JOIN LATERAL (SELECT {overage_messages_sql("u.messages")} AS overage_messages) o
"""  # noqa: S608 (constants only; values are parameters)

INSERT_SQL = f"""
INSERT INTO billing_events (
    id, user_id, event_type, amount, currency, description, subscription_id, metadata, created_at
)
SELECT gen_random_uuid(), c.user_id, '{PERIOD_CLOSED}', c.amount, c.currency,
       'Usage for ' || %(period)s || ': ' || c.messages || ' messages, '
           || c.overage_messages || ' over the plan',
       c.subscription_id,
       jsonb_build_object(
           'period', %(period)s, 'plan_id', c.plan_id, 'agents', c.agents,
           'messages', c.messages, 'included_messages', c.included,
           'overage_messages', c.overage_messages
       ),
       now()
FROM ({CLOSE_SQL}) c
ON CONFLICT (user_id, (metadata ->> 'period')) WHERE event_type = '{PERIOD_CLOSED}'
DO NOTHING
"""  # noqa: S608 (constants only; values are parameters)


@dataclass(frozen=True)
class PeriodCharge:
    user_id: str
    plan_id: str
    currency: str
    agents: int
    messages: int
    included: int | None
    overage_messages: int
    amount: Decimal
    has_customer: bool


@dataclass
class CloseResult:
    period: str
    users: int = 0
    new_rows: int = 0
    messages: int = 0
    overage_messages: int = 0
    amount: Decimal = Decimal("0.00")
    sent_to_stripe: int = 0
    waiting_for_stripe: int = 0
    without_customer: int = 0


def period_charges(month: dt.date) -> Iterator[PeriodCharge]:
    """What the close would charge, per user (what --dry-run prints)."""
    first, after = month_bounds(month)
    with connection.cursor() as cursor:
        cursor.execute(CLOSE_SQL + " ORDER BY u.user_id", {"first": first, "after": after})
        for row in cursor.fetchall():
            (user_id, _, plan_id, currency, agents, messages, included, overage, amount,
             customer) = row  # fmt: skip
            yield PeriodCharge(
                user_id=user_id, plan_id=plan_id, currency=currency, agents=agents,
                messages=messages, included=included, overage_messages=overage,
                amount=amount, has_customer=bool(customer),
            )  # fmt: skip


def close_period_record(month: dt.date) -> int:
    """Write the month's ledger rows (one per user, once); return how many are new."""
    first, after = month_bounds(month)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(INSERT_SQL, {"first": first, "after": after, "period": format_month(first)})
        return cursor.rowcount


def _pending_invoice_items(period: str) -> list[tuple[BillingEvent, str]]:
    rows = (
        BillingEvent.objects.filter(event_type=PERIOD_CLOSED, metadata__period=period, amount__gt=0)
        .exclude(metadata__has_key="stripe_invoice_item_id")
        .select_related("subscription")
        .order_by("user_id")
    )
    return [
        (row, row.subscription.stripe_customer_id)
        for row in rows
        if row.subscription is not None and row.subscription.stripe_customer_id
    ]


def close_period_send_to_stripe(
    period: str, *, progress: Callable[[int], Any] | None = None
) -> tuple[int, int]:
    """Create the invoice items not yet sent; return (sent now, still waiting)."""
    pending = _pending_invoice_items(period)
    if not pending:
        return 0, 0
    if not stripe_configured():
        return 0, len(pending)
    client = stripe_client()
    sent = 0
    for row, customer_id in pending:
        cents = int((row.amount or Decimal(0)) * 100)
        with stripe_errors():
            item = client.v1.invoice_items.create(
                params={
                    "customer": customer_id,
                    "amount": cents,
                    "currency": (row.currency or "USD").lower(),
                    "description": row.description or f"Usage overage {period}",
                    "metadata": {"user_id": row.user_id, "period": period},
                },
                options=stripe_options(f"a1zap-overage-{row.user_id}-{period}"),
            )
        with transaction.atomic():
            locked = BillingEvent.objects.select_for_update().get(pk=row.pk)
            locked.metadata = {**(locked.metadata or {}), "stripe_invoice_item_id": item.id}
            locked.save(update_fields=["metadata"])
        sent += 1
        if progress:
            progress(1)
    return sent, 0


def close_period_summary(month: dt.date) -> CloseResult:
    """Totals of the month's ledger rows, for the end-of-run table."""
    period = format_month(month)
    result = CloseResult(period=period)
    rows = BillingEvent.objects.filter(event_type=PERIOD_CLOSED, metadata__period=period)
    for row in rows.select_related("subscription").iterator(chunk_size=2000):
        metadata = row.metadata or {}
        result.users += 1
        result.messages += int(metadata.get("messages", 0))
        result.overage_messages += int(metadata.get("overage_messages", 0))
        result.amount += row.amount or Decimal(0)
        if row.amount and row.amount > 0:
            if "stripe_invoice_item_id" in metadata:
                result.sent_to_stripe += 1
            elif row.subscription is None or not row.subscription.stripe_customer_id:
                result.without_customer += 1
            else:
                result.waiting_for_stripe += 1
    return result
