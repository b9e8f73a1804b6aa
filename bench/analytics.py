"""Benchmark analytics: the endpoint at two sizes, and the message write path with and without
the rollup.

    .venv/bin/python bench/analytics.py [--large-messages 1000000] [--small-messages 1000]
        [--write-messages 300] [--rounds 5]

On its own database (BENCH_DATABASE_URL, default `a1zap_bench`, created and migrated if
missing). `bench/run.py` runs the same rows (`rows()`) after the Celery row.

- `GET /api/v1/agents/{id}/analytics/` for a year, per day, in process (Django's test client,
  as a superuser: no network, no throttle), for agents with `--large-messages` messages and
  one with `--small-messages`. The large agents' rollup rows (and their end users: about 10
  messages per end user and day, ids drawn from a pool of 50,000, or of 40) are written
  directly with SQL, as a year of traffic would have left them; the small agent's messages
  are written with SQL and rolled up by `rollups_rebuild_agent`. Nothing in the endpoint
  reads `messages`.
- `message_post` (the service, one committed transaction per message) with the rollup, and
  with the statements as they were before it (same round trips, no rollup CTEs).

Each measurement runs `--rounds` times interleaved; a ratio is the median of the rounds'
ratios. A benchmark, not a test: it measures and prints, it asserts nothing.
"""

import argparse
import datetime as dt
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import usage_ingest as ingest  # noqa: E402

DAYS = 365
CHANNELS = ("web", "whatsapp", "slack")
MESSAGES_PER_END_USER_DAY = 10
REQUESTS_PER_ROUND = 20

# The write path's two statements as they were before the rollup, returning the columns the
# Python around them reads (the analytics state as NULLs).
ADVANCE_WITHOUT_ROLLUP_SQL = """
UPDATE agent_conversations
SET last_message_at = CASE WHEN status IS DISTINCT FROM 'archived'
    THEN GREATEST(last_message_at, clock_timestamp()) ELSE last_message_at END
WHERE id = %(conversation)s
RETURNING status, last_message_at, agent_id, channel, external_user_id, started_at,
          NULL::timestamptz, NULL::timestamptz, NULL::date
"""
INSERT_WITHOUT_ROLLUP_SQL = """
INSERT INTO messages
    (agent_id, conversation_id, role, content, metadata, client_message_id, created_at)
VALUES (%(agent)s, %(conversation)s, %(role)s, %(content)s, %(metadata)s::jsonb,
        %(client_message_id)s, %(at)s)
ON CONFLICT (conversation_id, client_message_id) WHERE client_message_id IS NOT NULL
DO NOTHING
RETURNING id
"""

# A year of rollup rows for one agent: `per_day` messages a day per channel, half of them
# user messages, each answered; response times spread over buckets 10 to 49 (2 s to 4.7 h).
LARGE_ROLLUP_SQL = """
INSERT INTO agent_activity_days (
    agent_id, day, channel, conversations_started, conversations_answered,
    active_conversations, end_users, user_messages, agent_messages, responses,
    response_buckets, first_responses, first_response_buckets)
SELECT %(agent)s, d::date, ch, %(per_day)s / 10, %(per_day)s / 10, %(per_day)s / 10,
       %(users)s, %(per_day)s / 2, %(per_day)s - %(per_day)s / 2, %(per_day)s / 2,
       ARRAY(SELECT CASE WHEN b BETWEEN 11 AND 50 THEN %(per_day)s / 80 ELSE 0 END
             FROM generate_series(1, 96) b),
       %(per_day)s / 10,
       ARRAY(SELECT CASE WHEN b BETWEEN 11 AND 50 THEN %(per_day)s / 400 ELSE 0 END
             FROM generate_series(1, 96) b)
FROM generate_series(%(start)s::date, %(end)s::date, interval '1 day') d,
     unnest(%(channels)s::text[]) ch
"""
LARGE_USERS_SQL = """
INSERT INTO agent_activity_users (agent_id, day, channel, external_user_id)
SELECT %(agent)s, d::date, ch, 'user-' || ((u * 7919 + extract(doy FROM d)::int) %% %(pool)s)
FROM generate_series(%(start)s::date, %(end)s::date, interval '1 day') d,
     unnest(%(channels)s::text[]) ch, generate_series(1, %(users)s) u
ON CONFLICT DO NOTHING
"""
SMALL_MESSAGES_SQL = """
WITH c AS (
    INSERT INTO agent_conversations (agent_id, channel, external_user_id, started_at,
                                     last_message_at)
    SELECT %(agent)s, 'web', 'user-' || (n %% 40), %(start)s::timestamptz + n * interval '1 day',
           %(start)s::timestamptz + n * interval '1 day' + interval '1 hour'
    FROM generate_series(0, %(conversations)s - 1) n
    RETURNING id, started_at
)
INSERT INTO messages (agent_id, conversation_id, role, content, created_at)
SELECT %(agent)s, c.id, CASE WHEN m %% 2 = 0 THEN 'user' ELSE 'agent' END, 'bench',
       c.started_at + m * interval '37 seconds'
FROM c, generate_series(0, %(per_conversation)s - 1) m
"""


@dataclass(frozen=True)
class EndpointResult:
    large_ms: float
    small_ms: float
    ratio: float
    queries: int
    large_messages: int
    small_messages: int
    large_user_rows: int
    pool: int


@dataclass(frozen=True)
class WriteResult:
    with_us: float
    without_us: float
    ratio: float
    messages: int


def _superuser_client() -> object:
    from django.test import Client

    from bench.admin_pages import _superuser

    client = Client()
    client.force_login(_superuser())  # type: ignore[arg-type]
    return client


def _new_agent(label: str) -> uuid.UUID:
    agent_id, _ = ingest.new_agent(f"bench-analytics-{label}-{uuid.uuid4().hex[:8]}")
    return uuid.UUID(agent_id)


def _year() -> tuple[dt.date, dt.date]:
    end = dt.datetime.now(dt.UTC).date()
    return end - dt.timedelta(days=DAYS - 1), end


def write_large(agent: uuid.UUID, messages: int, pool: int) -> int:
    """Write a year of rollup rows for `messages` messages, with about one end user per 10
    messages a day drawn from `pool` ids; return the end-user rows."""
    from django.db import connection

    start, end = _year()
    per_day = max(messages // (DAYS * len(CHANNELS)), 2)
    parameters: dict[str, Any] = {
        "agent": agent, "start": start, "end": end, "channels": list(CHANNELS),
        "per_day": per_day, "users": max(per_day // MESSAGES_PER_END_USER_DAY, 1), "pool": pool,
    }  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(LARGE_ROLLUP_SQL, parameters)
        cursor.execute(LARGE_USERS_SQL, parameters)
        cursor.execute("SELECT count(*) FROM agent_activity_users WHERE agent_id = %s", [agent])
        (user_rows,) = cursor.fetchone() or (0,)
    return int(user_rows)


def write_small(agent: uuid.UUID, messages: int) -> None:
    """Write `messages` messages over the year with SQL, then roll them up."""
    from django.db import connection

    from conversations.rollups import rollups_rebuild_agent

    start, _ = _year()
    per_conversation = 10
    with connection.cursor() as cursor:
        cursor.execute(
            SMALL_MESSAGES_SQL,
            {
                "agent": agent,
                "start": dt.datetime.combine(start, dt.time(9), tzinfo=dt.UTC),
                "conversations": max(messages // per_conversation, 1),
                "per_conversation": per_conversation,
            },
        )
    rollups_rebuild_agent(agent_id=agent)


def measure_endpoint(
    large_messages: int = 1_000_000,
    small_messages: int = 1_000,
    rounds: int = 5,
    pools: tuple[int, ...] = (50_000, 40),
) -> list[EndpointResult]:
    """The endpoint for a year, per day: a large agent for each pool of end-user ids, each
    against the small agent measured next to it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    small = _new_agent("small")
    write_small(small, small_messages)
    larges = {pool: _new_agent(f"large-{pool}") for pool in pools}
    user_rows = {pool: write_large(agent, large_messages, pool) for pool, agent in larges.items()}
    # As autovacuum leaves a year of rows: statistics and the visibility map (index-only scans).
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE agent_activity_days")
        cursor.execute("VACUUM ANALYZE agent_activity_users")
    client = _superuser_client()
    start, end = _year()
    query = {"start": start.isoformat(), "end": end.isoformat(), "granularity": "day"}

    def timed(agent: uuid.UUID) -> float:
        path = f"/api/v1/agents/{agent}/analytics/"
        client.get(path, query)  # type: ignore[attr-defined]
        timings = []
        for _ in range(REQUESTS_PER_ROUND):
            started = time.perf_counter()
            response = client.get(path, query)  # type: ignore[attr-defined]
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.content[:300]
        return statistics.median(timings)

    results = []
    for pool, large in larges.items():
        large_times, small_times = [], []
        for _ in range(rounds):
            large_times.append(timed(large))
            small_times.append(timed(small))
        with CaptureQueriesContext(connection) as queries:
            client.get(f"/api/v1/agents/{large}/analytics/", query)  # type: ignore[attr-defined]
        results.append(
            EndpointResult(
                large_ms=statistics.median(large_times),
                small_ms=statistics.median(small_times),
                ratio=statistics.median(
                    big / little for big, little in zip(large_times, small_times, strict=True)
                ),
                queries=len(queries.captured_queries),
                large_messages=large_messages,
                small_messages=small_messages,
                large_user_rows=user_rows[pool],
                pool=pool,
            )
        )
    return results


def measure_write_path(messages: int = 300, rounds: int = 5) -> WriteResult:
    from conversations import rollups
    from conversations.models import AgentConversation
    from conversations.services import conversation_open, message_post

    agent_id, _ = ingest.new_agent(f"bench-analytics-writer-{uuid.uuid4().hex[:8]}")
    conversations = [
        conversation_open(agent_id=uuid.UUID(agent_id), channel="web", external_user_id=f"u{n}")[0]
        for n in range(20)
    ]
    with_rollup = (rollups.CONVERSATION_ADVANCE_SQL, rollups.MESSAGE_INSERT_SQL)
    without_rollup = (ADVANCE_WITHOUT_ROLLUP_SQL, INSERT_WITHOUT_ROLLUP_SQL)

    def timed(statements: tuple[str, str]) -> float:
        rollups.CONVERSATION_ADVANCE_SQL, rollups.MESSAGE_INSERT_SQL = statements
        try:
            started = time.perf_counter()
            for n in range(messages):
                conversation: AgentConversation = conversations[n % len(conversations)]
                message_post(
                    conversation=conversation, role="agent" if n % 2 else "user", content="hi"
                )
            return (time.perf_counter() - started) / messages * 1_000_000
        finally:
            rollups.CONVERSATION_ADVANCE_SQL, rollups.MESSAGE_INSERT_SQL = with_rollup

    timed(with_rollup)  # warm up: prepared statements, the day's rows
    timed(without_rollup)
    withs, withouts = [], []
    for _ in range(rounds):
        withouts.append(timed(without_rollup))
        withs.append(timed(with_rollup))
    return WriteResult(
        with_us=statistics.median(withs),
        without_us=statistics.median(withouts),
        ratio=statistics.median(w / wo for w, wo in zip(withs, withouts, strict=True)),
        messages=messages,
    )


def rows(
    *, large_messages: int, small_messages: int, write_messages: int, rounds: int
) -> list[tuple[str, str, str, str, str]]:
    """The table's rows: (measurement, size, result, floor, ratio)."""
    endpoints = measure_endpoint(large_messages, small_messages, rounds)
    write = measure_write_path(write_messages, rounds)
    table = [
        (
            "`GET /api/v1/agents/{id}/analytics/`, a year per day (in process, staff)",
            f"{e.large_messages:,} messages over {DAYS} days, 3 channels, "
            f"{e.large_user_rows:,} end-user days (ids from a pool of {e.pool:,})",
            f"{e.large_ms:,.1f} ms ({e.queries} queries)",
            f"{e.small_messages:,} messages: {e.small_ms:,.1f} ms",
            f"x{e.ratio:.2f}",
        )
        for e in endpoints
    ]
    return [
        *table,
        (
            "`message_post` with the analytics rollup (one transaction per message)",
            f"{write.messages:,} messages x {rounds} rounds, 20 conversations",
            f"{write.with_us:,.0f} µs/message",
            f"without the rollup: {write.without_us:,.0f} µs/message",
            f"x{write.ratio:.2f}",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--large-messages", type=int, default=1_000_000)
    parser.add_argument("--small-messages", type=int, default=1_000)
    parser.add_argument("--write-messages", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-migrate", action="store_true")
    arguments = parser.parse_args()
    if not arguments.no_migrate:
        ingest.prepare_database()
    ingest.setup_django()
    table = rows(
        large_messages=arguments.large_messages,
        small_messages=arguments.small_messages,
        write_messages=arguments.write_messages,
        rounds=arguments.rounds,
    )
    print("| measurement | size | result | floor (same run) | result / floor |")
    print("| --- | --- | --- | --- | ---: |")
    for row in table:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
