"""The monthly close: bill each account's messages past its plan's included amount, once.

1. One aggregation query reads the month's messages per account from its running monthly
   counter (`user_monthly_usage`; an account is a user or a team) and prices the overage
   with the account's plan (hard-capped plans and plans without a quota have none).
2. One INSERT … SELECT writes a `usage_period_closed` ledger row per account and month;
   a unique index on (user_id, period) makes a re-run insert nothing.
3. After that commits, one task per row with an amount and no Stripe invoice item yet
   (`invoicing.tasks.overage_invoice_item_send`) creates its item, with an idempotency key
   derived from the row (account and month), and stores the item's id on the row. A task
   holds a lock on its row while it calls Stripe, so a second task for the same row (a re-run
   of the close, a redelivery after a worker died, the other beat) waits its turn or finds
   the row sent; one redelivered after Stripe answered but before the id was stored gets
   Stripe's first answer again for the same key. Re-running the close sends nothing twice.

Which account pays for a message is decided when it is counted: usage ingestion
(`usage.services.INGEST_SQL`) adds it to the counter of the account that owns the agent at
that moment, in the statement that writes the agent's day, and the quota and the usage
summary's `messages_used` read the same counter. So the close, the quota and the summary
count the same messages; an agent moved between a user and a team mid-month leaves the
messages counted before the move with the account that owned it then, and the messages of an
agent deleted before the close are still billed (its daily rows go with it, the counter
stays).

The ledger row's `agents` is informational, not billed: how many agents the account owns at
the close that have a usage row (`agent_usage`) in the month. A moved agent counts for its
owner at the close only; a deleted one counts for no one. An account with agents that have
usage rows but no counted messages (API calls only) gets a row with 0 messages, as one with
counted messages and no such agents gets a row with `agents` 0.

Paused and archived agents accrue no usage (their apps are refused), so their days cost
nothing. The plan used is the account's plan at the time of the close.
"""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction

from billing.models import BillingEvent, BillingEventType
from billing.rules import overage_cost_sql, overage_messages_sql, plan_of_user_sql
from core.advisory_locks import advisory_lock
from core.months import format_month, month_bounds
from invoicing.stripe_gateway import options as stripe_options
from invoicing.stripe_gateway import stripe_client, stripe_errors
from jobs.enqueue import enqueue_now

PERIOD_CLOSED = BillingEventType.USAGE_PERIOD_CLOSED

# Per account: the month's messages (its counter), the agents it owns at the close with usage
# in the month (informational), the plan's included amount and the priced overage
# (billing.rules prices it, as it does the usage summary's projection).
CLOSE_SQL = f"""
SELECT u.user_id, s.id AS subscription_id, p.id AS plan_id,
       COALESCE(p.currency, 'USD') AS currency, u.agents, u.messages,
       p.max_messages_per_month AS included, o.overage_messages,
       {overage_cost_sql("o.overage_messages")} AS amount,
       s.stripe_customer_id
FROM (
    SELECT COALESCE(counted.user_id, owned.user_id) AS user_id,
           COALESCE(owned.agents, 0) AS agents,
           COALESCE(counted.messages, 0)::bigint AS messages
    FROM (
        SELECT user_id, message_count AS messages
        FROM user_monthly_usage
        WHERE month = %(first)s
    ) counted
    FULL JOIN (
        -- One row per agent first, then per owner: no COUNT(DISTINCT), which would sort
        -- every usage row of the month.
        SELECT a.owner_id AS user_id, COUNT(*) AS agents
        FROM (
            SELECT agent_id FROM agent_usage
            WHERE date >= %(first)s AND date < %(after)s
            GROUP BY agent_id
        ) used
        JOIN a1_agents a ON a.id = used.agent_id
        GROUP BY a.owner_id
    ) owned ON owned.user_id = counted.user_id
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
    """What the close would charge, per account (what --dry-run prints)."""
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
    """Write the month's ledger rows (one per account, once); return how many are new."""
    first, after = month_bounds(month)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(INSERT_SQL, {"first": first, "after": after, "period": format_month(first)})
        return cursor.rowcount


def _pending_invoice_items(period: str) -> list[str]:
    """The ids of the month's rows with an amount, a Stripe customer and no invoice item yet."""
    return [
        str(pk)
        for pk in BillingEvent.objects.filter(
            event_type=PERIOD_CLOSED,
            metadata__period=period,
            amount__gt=0,
            subscription__stripe_customer_id__gt="",
        )
        .exclude(metadata__has_key="stripe_invoice_item_id")
        .order_by("user_id")
        .values_list("pk", flat=True)
    ]


@dataclass
class FanOut:
    queued: int = 0
    not_queued: int = 0


def close_period_fan_out(period: str) -> FanOut:
    """Queue one task per invoice item the month still owes Stripe (`not_queued` counts
    those the broker refused: a re-run queues them)."""
    from invoicing.tasks import overage_invoice_item_send  # the tasks module imports this one

    result = FanOut()
    for billing_event_id in _pending_invoice_items(period):
        if enqueue_now(overage_invoice_item_send, billing_event_id=billing_event_id):
            result.queued += 1
        else:
            result.not_queued += 1
    return result


def invoice_item_idempotency_key(row: BillingEvent) -> str:
    """The row's key at Stripe: one user and month is one invoice item, however often sent."""
    return f"a1zap-overage-{row.user_id}-{(row.metadata or {}).get('period')}"


def overage_invoice_item_send(*, billing_event_id: str) -> str:
    """Create the row's Stripe invoice item unless it has one; store its id; say what
    happened. Stripe's failures raise (`BillingUnavailable` for an outage, which the task
    retries; `BillingProviderError` for a refusal, which it records as failed)."""
    # Held across the Stripe call, outside any transaction: the row's other senders wait.
    with advisory_lock(f"invoice-item:{billing_event_id}"):
        row = (
            BillingEvent.objects.select_related("subscription")
            .filter(pk=billing_event_id, event_type=PERIOD_CLOSED)
            .first()
        )
        if row is None:
            return "no such row"
        metadata = row.metadata or {}
        if "stripe_invoice_item_id" in metadata:
            return "already sent"
        customer_id = row.subscription.stripe_customer_id if row.subscription else None
        if not customer_id or not row.amount or row.amount <= 0:
            return "nothing to send"
        period = metadata.get("period", "")
        with stripe_errors():
            item = stripe_client().v1.invoice_items.create(
                params={
                    "customer": customer_id,
                    "amount": int(row.amount * 100),
                    "currency": (row.currency or "USD").lower(),
                    "description": row.description or f"Usage overage {period}",
                    "metadata": {"user_id": row.user_id, "period": period},
                },
                options=stripe_options(invoice_item_idempotency_key(row)),
            )
        with transaction.atomic():
            locked = BillingEvent.objects.select_for_update().get(pk=row.pk)
            locked.metadata = {**(locked.metadata or {}), "stripe_invoice_item_id": item.id}
            locked.save(update_fields=["metadata"])
    return "sent"


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
