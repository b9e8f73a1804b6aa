"""Counting usage: idempotent event ingestion, per-message counting, and monthly quotas.

All counting is one set-based SQL statement (INGEST_SQL below), never a read-modify-write in
Python:

- The agent's row is locked FOR SHARE and its plan read in the same statement. A pause takes
  the row FOR UPDATE, so a pause and an ingestion are ordered: once a pause commits, nothing
  more is counted for the agent.
- Event ids go into `usage_event_ids` with ON CONFLICT DO NOTHING; only the ids that come
  back are counted. Its unique key makes concurrent retries of one id wait for each other, so
  an id is counted exactly once.
- Counters are summed per UTC day, then one INSERT … ON CONFLICT (agent_id, date) DO UPDATE
  SET x = x + EXCLUDED.x adds them for every day of the batch at once.
- Messages also go into the owner's running monthly counter, whose conditional upsert is the
  hard-cap check: it adds only while the month stays within the plan's limit.

The API calls it outside a transaction, so the statement commits inside PostgreSQL and no
row lock waits on Python; conversations call it inside their own transaction.
"""

import datetime as dt
import json
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from agents.errors import AgentNotActive
from billing.rules import PAYMENT_OVERDUE_SQL, plan_of_user_sql
from core.batched_delete import delete_in_batches
from notifications.models import DEFAULT_USAGE_THRESHOLDS
from usage.alerts import usage_alerts_notify_on_commit, usage_hard_cap_reached
from usage.errors import AgentGone, PaymentOverdue, QuotaExceeded

_DEFAULT_THRESHOLDS = "{" + ",".join(str(percent) for percent in DEFAULT_USAGE_THRESHOLDS) + "}"


@dataclass(frozen=True)
class UsageEvent:
    """One report from an app; counters add up, `storage_bytes` is a gauge."""

    event_id: str
    occurred_at: dt.datetime
    messages: int = 0
    api_calls: int = 0
    compute_seconds: int = 0
    storage_bytes: int | None = None


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int


QUOTA_EXCEEDED_SQLSTATE = "A1Q01"

# One statement does the whole ingestion, so it commits inside PostgreSQL without a round
# trip to Python while it holds row locks (the owner's monthly counter is a hot row).
#   agent    share-locks the agent row and reads its owner's plan, and whether the owner's
#            subscription is past due beyond the plan's grace period;
#   new_ids  records the event ids, only for an active agent; only new ids come back
#            (messages counted one by one carry no client id and are not remembered);
#   days     sums the new events per UTC day (the gauge keeps the latest measurement);
#   monthly  adds messages to the owner's month, within a hard cap if the plan has one;
#   alerts   records each of the owner's usage thresholds that this statement's addition
#            carried the month's counter across (before < threshold <= after): the counter
#            row is locked by the addition, so exactly one statement crosses each threshold;
#   daily    adds each day's totals to agent_usage, with their estimated cost.
# A month the cap refuses makes the final SELECT call a1zap_quota_exceeded(), which raises
# and undoes everything the statement wrote.
INGEST_SQL = f"""
WITH agent AS MATERIALIZED (
    SELECT a.status, a.owner_id,
           CASE WHEN p.messages_hard_cap THEN p.max_messages_per_month END AS cap,
           {PAYMENT_OVERDUE_SQL} AS overdue,
           p.price_per_message, p.price_per_api_call, p.price_per_compute_second,
           p.max_messages_per_month AS included,
           COALESCE(ns.usage_thresholds, '{_DEFAULT_THRESHOLDS}'::integer[]) AS thresholds
    FROM a1_agents a
    {plan_of_user_sql("a.owner_id")}
    LEFT JOIN notification_settings ns ON ns.owner_id = a.owner_id
    WHERE a.id = %(agent)s
    FOR SHARE OF a
),
input AS (
    SELECT * FROM json_to_recordset(%(events)s::json) AS e(
        event_id text, occurred_at timestamptz, messages integer, api_calls integer,
        compute_seconds integer, storage_bytes bigint
    )
),
new_ids AS (
    INSERT INTO usage_event_ids (agent_id, event_id, occurred_at)
    SELECT %(agent)s, event_id, occurred_at FROM input
    WHERE %(remember)s AND (SELECT status = 'active' AND NOT overdue FROM agent)
    ON CONFLICT DO NOTHING
    RETURNING event_id
),
counted_ids AS (
    SELECT event_id FROM new_ids
    UNION ALL
    SELECT event_id FROM input
    WHERE NOT %(remember)s AND (SELECT status = 'active' AND NOT overdue FROM agent)
),
days AS (
    SELECT (i.occurred_at AT TIME ZONE 'UTC')::date AS day,
           SUM(i.messages)::integer AS messages,
           SUM(i.api_calls)::integer AS api_calls,
           SUM(i.compute_seconds)::integer AS compute_seconds,
           (ARRAY_AGG(i.storage_bytes ORDER BY i.occurred_at DESC)
                FILTER (WHERE i.storage_bytes IS NOT NULL))[1] AS storage_bytes,
           MAX(i.occurred_at) FILTER (WHERE i.storage_bytes IS NOT NULL) AS storage_measured_at
    FROM input i JOIN counted_ids c USING (event_id)
    GROUP BY 1
),
months AS (
    SELECT date_trunc('month', day)::date AS month, SUM(messages) AS messages
    FROM days GROUP BY 1 HAVING SUM(messages) > 0
),
monthly AS (
    INSERT INTO user_monthly_usage AS m (user_id, month, message_count, updated_at)
    SELECT (SELECT owner_id FROM agent), month, messages, now() FROM months
    WHERE (SELECT cap FROM agent) IS NULL OR messages <= (SELECT cap FROM agent)
    ON CONFLICT (user_id, month) DO UPDATE
        SET message_count = m.message_count + EXCLUDED.message_count, updated_at = now()
        WHERE (SELECT cap FROM agent) IS NULL
           OR m.message_count + EXCLUDED.message_count <= (SELECT cap FROM agent)
    RETURNING month, m.message_count AS after
),
alerts AS (
    INSERT INTO usage_alerts (user_id, month, kind, percent, message_count, included_messages)
    SELECT a.owner_id, mo.month, 'threshold', t.percent, mo.after, a.included
    FROM monthly mo
    JOIN months mm USING (month)
    CROSS JOIN agent a
    CROSS JOIN LATERAL unnest(a.thresholds) AS t(percent)
    WHERE a.included > 0
      AND mo.after >= ceil(a.included * t.percent / 100.0)
      AND mo.after - mm.messages < ceil(a.included * t.percent / 100.0)
    ON CONFLICT DO NOTHING
    RETURNING 1
),
daily AS (
    INSERT INTO agent_usage AS u (
        agent_id, date, message_count, api_calls, compute_seconds, storage_bytes,
        storage_measured_at, estimated_cost
    )
    SELECT %(agent)s, d.day, d.messages, d.api_calls, d.compute_seconds,
           COALESCE(d.storage_bytes, 0), d.storage_measured_at,
           d.messages * a.price_per_message + d.api_calls * a.price_per_api_call
               + d.compute_seconds * a.price_per_compute_second
    FROM days d CROSS JOIN agent a
    ON CONFLICT (agent_id, date) DO UPDATE SET
        message_count = COALESCE(u.message_count, 0) + EXCLUDED.message_count,
        api_calls = COALESCE(u.api_calls, 0) + EXCLUDED.api_calls,
        compute_seconds = COALESCE(u.compute_seconds, 0) + EXCLUDED.compute_seconds,
        storage_bytes = CASE
            WHEN EXCLUDED.storage_measured_at IS NOT NULL
             AND (u.storage_measured_at IS NULL
                  OR EXCLUDED.storage_measured_at >= u.storage_measured_at)
            THEN EXCLUDED.storage_bytes ELSE u.storage_bytes END,
        storage_measured_at = CASE
            WHEN EXCLUDED.storage_measured_at IS NOT NULL
             AND (u.storage_measured_at IS NULL
                  OR EXCLUDED.storage_measured_at >= u.storage_measured_at)
            THEN EXCLUDED.storage_measured_at ELSE u.storage_measured_at END,
        estimated_cost = COALESCE(u.estimated_cost, 0) + EXCLUDED.estimated_cost
    RETURNING 1
)
SELECT (SELECT count(*) FROM agent),
       (SELECT status FROM agent),
       (SELECT overdue FROM agent),
       (SELECT count(*) FROM counted_ids),
       (SELECT owner_id FROM agent),
       (SELECT count(*) FROM alerts),
       CASE WHEN (SELECT count(*) FROM monthly) < (SELECT count(*) FROM months)
            THEN a1zap_quota_exceeded((SELECT cap FROM agent))
            ELSE (SELECT count(*) FROM daily) END
"""  # noqa: S608 (constants only; values are parameters)


def _run_ingest_statement(agent_id: Any, events: list[UsageEvent], *, remember_ids: bool) -> int:
    """Count the events with INGEST_SQL; return how many were new."""
    # The events go as one JSON document (json_to_recordset in `input`): psycopg dumps six
    # arrays of a batch element by element in Python, twice the CPU (about 4 ms a batch of
    # 1000 against 2). The ids are text_problem-clean, so every one is storable text.
    events_json = json.dumps(
        [
            {
                "event_id": event.event_id,
                # In UTC: PostgreSQL reads no offset with fractional seconds, which
                # Python's parser accepts (`+05:30:15.5`).
                "occurred_at": event.occurred_at.astimezone(dt.UTC).isoformat(),
                "messages": event.messages,
                "api_calls": event.api_calls,
                "compute_seconds": event.compute_seconds,
                "storage_bytes": event.storage_bytes,
            }
            for event in events
        ]
    )
    parameters = {"agent": agent_id, "remember": remember_ids, "events": events_json}
    try:
        # Inside a caller's transaction a savepoint keeps that transaction usable after a
        # refusal; in autocommit the statement is its own transaction.
        savepoint = transaction.atomic() if connection.in_atomic_block else nullcontext()
        with savepoint, connection.cursor() as cursor:
            cursor.execute(INGEST_SQL, parameters)
            found, status, overdue, accepted, owner_id, alerts, _ = cursor.fetchone()
    except DatabaseError as error:
        cause = error.__cause__
        if getattr(cause, "sqlstate", None) == QUOTA_EXCEEDED_SQLSTATE:
            detail = getattr(getattr(cause, "diag", None), "message_detail", None)
            usage_hard_cap_reached(agent_id=agent_id, events=events)
            raise QuotaExceeded(limit=int(detail) if detail else None) from None
        raise
    if alerts:
        usage_alerts_notify_on_commit(owner_id=owner_id)
    if not found:
        raise AgentGone()
    if overdue:
        raise PaymentOverdue()
    if status != "active":
        raise AgentNotActive(
            f"This agent is {status or 'not active'}; it accepts no usage or messages.",
            status=status,
        )
    return int(accepted)


def usage_ingest(*, agent_id: Any, events: list[UsageEvent]) -> IngestResult:
    """Count a batch of an agent's usage events, all or nothing; repeated ids count once.

    Outside a transaction the one statement commits by itself; inside one, it joins it.
    """
    unique: dict[str, UsageEvent] = {}
    for event in events:
        unique.setdefault(event.event_id, event)
    accepted = _run_ingest_statement(agent_id, list(unique.values()), remember_ids=True)
    return IngestResult(accepted=accepted, duplicates=len(events) - accepted)


def usage_record_message(*, agent_id: Any, occurred_at: dt.datetime | None = None) -> None:
    """Count one message for the agent's day and its owner's month, in the caller's transaction.

    Raise AgentNotActive for a paused or archived agent and QuotaExceeded past a hard cap;
    the caller's transaction then writes nothing.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("usage_record_message() must run inside the caller's transaction.")
    event = UsageEvent(event_id="message", occurred_at=occurred_at or timezone.now(), messages=1)
    _run_ingest_statement(agent_id, [event], remember_ids=False)


# --- pruning --------------------------------------------------------------------------------

# Events older than 35 days are refused at ingestion, so their ids can never be counted
# again; a day of margin covers clock skew.
EVENT_IDS_KEPT = dt.timedelta(days=36)


def usage_event_ids_prune(*, batch_size: int = 10_000) -> tuple[int, dt.datetime]:
    """Forget the event ids older than the ingestion window; return (deleted, cutoff)."""
    cutoff = timezone.now() - EVENT_IDS_KEPT
    deleted = delete_in_batches(
        table="usage_event_ids", key=("agent_id", "event_id"), older="occurred_at",
        cutoff=cutoff, batch_size=batch_size,
    )  # fmt: skip
    return deleted, cutoff
