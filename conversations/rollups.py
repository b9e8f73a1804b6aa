"""The analytics rollup: each message adds to its agent's day, in the message's transaction.

`agent_activity_days` holds one row per (agent, UTC day, channel) and
`agent_activity_day_totals` the same summed over the day's channels; `agent_activity_users`
one row per end user active that day, and `agent_activity_returns` those end users counted
by the day each was last active before (distinct end users of any range without counting
them one by one). The message write path (conversations/services.py) calls
`message_insert_parameters` with what the conversation's row said before the message (read
and moved under the row's lock, in the UPDATE the path already makes), and the INSERT of the
message carries the rollup's upserts as CTEs: no extra round trip, but for an end user's
first message of a day (`end_user_return_count`). `rollups_rebuild`
recomputes the same rows from the messages with set-based SQL; the two agree (a test
compares them on generated data).

The rules, defined once (README "Analytics"):

- A message counts on the UTC day of its server time (`created_at`), never a client's clock.
- A conversation is active on a day when it has a message that day; its end user (its
  `external_user_id` at that time) is active that day too.
- A response is an agent message that follows one or more user messages no agent message
  has answered yet; it is measured from the earliest of them and counted on the reply's
  day. The first response of a conversation also counts as its first response time, and
  the conversation as answered, on the day the conversation started.
- System and tool messages are counted by role; they neither open nor answer a wait.
"""

import bisect
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from agents.locks import agents_lock
from conversations.models import (
    NEVER_ACTIVE_BEFORE,
    RESPONSE_BUCKET_BOUNDS_US,
    RESPONSE_BUCKETS,
    MessageRole,
)

ROLE_COLUMNS = {
    MessageRole.USER: "user_messages",
    MessageRole.AGENT: "agent_messages",
    MessageRole.SYSTEM: "system_messages",
    MessageRole.TOOL: "tool_messages",
}
ONE_MICROSECOND = dt.timedelta(microseconds=1)


def utc_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(dt.UTC).date()


def response_bucket(wait: dt.timedelta) -> int:
    """The histogram bucket (0-based) of a response time; the same as the SQL's."""
    return bisect.bisect_right(RESPONSE_BUCKET_BOUNDS_US, wait // ONE_MICROSECOND)


def one_hot(bucket: int | None) -> list[int]:
    counts = [0] * RESPONSE_BUCKETS
    if bucket is not None:
        counts[bucket] = 1
    return counts


@dataclass(frozen=True)
class ConversationBefore:
    """The conversation's row as the message found it, under its lock."""

    agent_id: uuid.UUID
    channel: str
    external_user_id: str | None
    started_at: dt.datetime
    reply_pending_since: dt.datetime | None
    first_response_at: dt.datetime | None
    activity_day: dt.date | None


# The conversation's analytics state moves in the UPDATE that takes the row's lock and
# stamps the message's time (strictly after the previous message's, so time order is
# write order); the old state comes back beside the new time. %(role)s is the message's.
CONVERSATION_ADVANCE_SQL = """
UPDATE agent_conversations c
SET last_message_at = o.at,
    activity_day = (o.at AT TIME ZONE 'UTC')::date,
    reply_pending_since = CASE %(role)s::text
        WHEN 'user' THEN COALESCE(o.reply_pending_since, o.at)
        WHEN 'agent' THEN NULL
        ELSE o.reply_pending_since END,
    first_response_at = CASE
        WHEN %(role)s::text = 'agent' AND o.reply_pending_since IS NOT NULL
        THEN COALESCE(o.first_response_at, o.at)
        ELSE o.first_response_at END
FROM (
    SELECT id, status, reply_pending_since, first_response_at, activity_day,
           GREATEST(last_message_at + interval '1 microsecond', clock_timestamp()) AS at
    FROM agent_conversations WHERE id = %(conversation)s FOR UPDATE
) o
WHERE c.id = o.id
RETURNING o.status, o.at, c.agent_id, c.channel, c.external_user_id, c.started_at,
          o.reply_pending_since, o.first_response_at, o.activity_day
"""


# The message's counts added to a rollup row: its day and channel's, or its day's over all
# channels (agent_activity_day_totals), the same statement for both.
def _counts_upsert(table: str, key_columns: str, key_values: str) -> str:
    return (
        (
            """
    INSERT INTO TABLE AS r (
        KEY_COLUMNS, active_conversations, end_users,
        user_messages, agent_messages, system_messages, tool_messages, conversations_answered,
        responses, response_buckets, first_responses, first_response_buckets
    )
    SELECT KEY_VALUES, %(newly_active)s::int,
           (SELECT count(*) FROM new_user),
           %(user_messages)s, %(agent_messages)s, %(system_messages)s, %(tool_messages)s,
           %(answered_today)s, %(responses)s,
           array_fill(0, ARRAY[%(response_slot)s - 1]) || %(responses)s
               || array_fill(0, ARRAY[%(buckets)s - %(response_slot)s]),
           %(first_responses)s,
           array_fill(0, ARRAY[%(first_slot)s - 1]) || %(first_responses)s
               || array_fill(0, ARRAY[%(buckets)s - %(first_slot)s])
    FROM m
    ON CONFLICT (KEY_COLUMNS) DO UPDATE SET
    active_conversations = r.active_conversations + EXCLUDED.active_conversations,
    end_users = r.end_users + (SELECT count(*) FROM new_user),
    user_messages = r.user_messages + EXCLUDED.user_messages,
    agent_messages = r.agent_messages + EXCLUDED.agent_messages,
    system_messages = r.system_messages + EXCLUDED.system_messages,
    tool_messages = r.tool_messages + EXCLUDED.tool_messages,
    conversations_answered = r.conversations_answered + EXCLUDED.conversations_answered,
    responses = r.responses + EXCLUDED.responses,
    response_buckets[%(response_slot)s] = r.response_buckets[%(response_slot)s]
        + EXCLUDED.responses,
    first_responses = r.first_responses + EXCLUDED.first_responses,
    first_response_buckets[%(first_slot)s] = r.first_response_buckets[%(first_slot)s]
        + EXCLUDED.first_responses
"""
        )
        .replace("TABLE", table)
        .replace("KEY_COLUMNS", key_columns)
        .replace("KEY_VALUES", key_values)
    )


# The message's INSERT, with the rollup's writes as CTEs that run only if it stored a row
# (a retried client_message_id adds nothing). A new end user of the day is counted from the
# row its INSERT … ON CONFLICT DO NOTHING returned. A new day row's histograms are built here
# (zeros and the message's bucket), so no 96-entry arrays are sent with every message.
MESSAGE_INSERT_SQL = """
WITH m AS (
    INSERT INTO messages
        (agent_id, conversation_id, role, content, metadata, client_message_id, created_at)
    VALUES (%(agent)s, %(conversation)s, %(role)s, %(content)s, %(metadata)s::jsonb,
            %(client_message_id)s, %(at)s)
    ON CONFLICT (conversation_id, client_message_id) WHERE client_message_id IS NOT NULL
    DO NOTHING
    RETURNING id
),
new_user AS (
    INSERT INTO agent_activity_users (agent_id, day, channel, external_user_id)
    SELECT %(agent)s, %(day)s, %(channel)s, %(external_user_id)s::text FROM m
    WHERE %(newly_active)s AND %(external_user_id)s::text IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING 1
),
day_row AS (DAY_ROW),
all_channels AS (ALL_CHANNELS)
SELECT id, (SELECT count(*) FROM new_user) FROM m
""".replace(
    "DAY_ROW",
    _counts_upsert(
        "agent_activity_days", "agent_id, day, channel", "%(agent)s, %(day)s, %(channel)s"
    ),
).replace(
    "ALL_CHANNELS",
    _counts_upsert("agent_activity_day_totals", "agent_id, day", "%(agent)s, %(day)s"),
)


# A first answer to a conversation started on an earlier day counts on the day it started
# (another row than the message's day, so a statement of its own).
def _count_on_day_sql(counter: str) -> str:
    """Add one to `counter` of the agent's day on the channel and of its day's totals."""
    return f"""
WITH day_row AS (
    INSERT INTO agent_activity_days AS r (agent_id, day, channel, {counter})
    VALUES (%(agent)s, %(day)s, %(channel)s, 1)
    ON CONFLICT (agent_id, day, channel) DO UPDATE SET {counter} = r.{counter} + 1
)
INSERT INTO agent_activity_day_totals AS r (agent_id, day, {counter})
VALUES (%(agent)s, %(day)s, 1)
ON CONFLICT (agent_id, day) DO UPDATE SET {counter} = r.{counter} + 1
"""  # noqa: S608 (a column name of ours; values are parameters)


ANSWERED_ON_START_DAY_SQL = _count_on_day_sql("conversations_answered")
CONVERSATION_STARTED_SQL = _count_on_day_sql("conversations_started")


# An end user's first message of a day on a channel (a new agent_activity_users row) also
# counts them in agent_activity_returns by the day they were last active before. Under a lock
# on the end user (taken by its own statement, so this one sees what an end user's earlier
# holder committed): their days before and after this one, then the count on this day, and
# when a later day was counted first (its transaction committed before this one), that day
# moves from this day's predecessor to this day.
END_USER_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
END_USER_RETURN_SQL = """
WITH around AS MATERIALIZED (
    SELECT COALESCE((SELECT MAX(day) FROM agent_activity_users
                     WHERE agent_id = %(agent)s AND channel = %(channel)s
                       AND external_user_id = %(user)s AND day < %(day)s),
                    %(never)s::date) AS before,
           (SELECT MIN(day) FROM agent_activity_users
            WHERE agent_id = %(agent)s AND channel = %(channel)s
              AND external_user_id = %(user)s AND day > %(day)s) AS after
),
gone AS (
    DELETE FROM agent_activity_returns r USING around a
    WHERE r.agent_id = %(agent)s AND r.channel = %(channel)s AND r.day = a.after
      AND r.previous_day = a.before AND r.end_users = 1
),
fewer AS (
    UPDATE agent_activity_returns r SET end_users = r.end_users - 1 FROM around a
    WHERE r.agent_id = %(agent)s AND r.channel = %(channel)s AND r.day = a.after
      AND r.previous_day = a.before AND r.end_users > 1
)
INSERT INTO agent_activity_returns AS r (agent_id, day, channel, previous_day, end_users)
SELECT %(agent)s, v.day, %(channel)s, v.previous_day, 1
FROM around a,
     LATERAL (VALUES (%(day)s::date, a.before), (a.after, %(day)s::date)) v(day, previous_day)
WHERE v.day IS NOT NULL
ON CONFLICT (agent_id, day, channel, previous_day) DO UPDATE SET end_users = r.end_users + 1
"""


def end_user_return_count(
    *, agent_id: uuid.UUID, day: dt.date, channel: str, external_user_id: str
) -> None:
    """Count an end user active on a day for the first time (their row just inserted) by the
    day they were last active before. The end user's lock is the transaction's last."""
    with connection.cursor() as cursor:
        cursor.execute(
            END_USER_LOCK_SQL, [f"analytics-end-user:{agent_id}:{channel}:{external_user_id}"]
        )
        cursor.execute(
            END_USER_RETURN_SQL,
            {
                "agent": agent_id,
                "day": day,
                "channel": channel,
                "user": external_user_id,
                "never": NEVER_ACTIVE_BEFORE,
            },
        )


def message_insert_parameters(
    *, before: ConversationBefore, role: str, at: dt.datetime
) -> tuple[dict[str, Any], dt.date | None]:
    """The rollup's part of the message INSERT's parameters, and the start day to count the
    conversation as answered on when that is another day than the message's."""
    day = utc_day(at)
    newly_active = before.activity_day != day
    wait = (
        at - before.reply_pending_since
        if role == MessageRole.AGENT and before.reply_pending_since is not None
        else None
    )
    bucket = response_bucket(wait) if wait is not None else None
    first = bucket if before.first_response_at is None else None
    answered_day = utc_day(before.started_at) if first is not None else None
    parameters: dict[str, Any] = {
        "day": day,
        "channel": before.channel,
        "external_user_id": before.external_user_id,
        "newly_active": newly_active,
        "answered_today": int(answered_day == day),
        "responses": int(bucket is not None),
        "response_slot": (bucket or 0) + 1,
        "first_responses": int(first is not None),
        "first_slot": (first or 0) + 1,
        "buckets": RESPONSE_BUCKETS,
    }
    for message_role, column in ROLE_COLUMNS.items():
        parameters[column] = int(role == message_role)
    return parameters, (answered_day if answered_day is not None and answered_day != day else None)


def conversation_started_count(
    *, agent_id: uuid.UUID, channel: str, started_at: dt.datetime
) -> None:
    """Count a conversation just opened on the day it started."""
    with connection.cursor() as cursor:
        day = started_at.astimezone(dt.UTC).date()
        cursor.execute(
            CONVERSATION_STARTED_SQL, {"agent": agent_id, "day": day, "channel": channel}
        )


def answered_on_start_day_count(*, agent_id: uuid.UUID, day: dt.date, channel: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            ANSWERED_ON_START_DAY_SQL, {"agent": agent_id, "day": day, "channel": channel}
        )


# --- the rebuild ---------------------------------------------------------------------------

# Every message of the agent's conversations with activity on or after the day, in time
# order, into a table of this transaction. `seg` counts the agent messages before each one,
# so a stretch of messages ends with the agent message that answers it, and the earliest
# user message of the stretch is what that agent message answers.
REBUILD_MESSAGES_SQL = """
CREATE TEMPORARY TABLE rebuild_messages ON COMMIT DROP AS
WITH conv AS MATERIALIZED (
    SELECT id, channel, external_user_id, started_at
    FROM agent_conversations
    WHERE agent_id = %(agent)s AND (last_message_at >= %(since)s OR started_at >= %(since)s)
),
ordered AS (
    SELECT m.id, m.conversation_id, m.role, m.created_at, c.channel, c.external_user_id,
           COUNT(*) FILTER (WHERE m.role = 'agent') OVER (
               PARTITION BY m.conversation_id ORDER BY m.created_at, m.id
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS seg
    FROM messages m JOIN conv c ON c.id = m.conversation_id
),
stretch AS (
    SELECT *, MIN(created_at) FILTER (WHERE role = 'user')
                  OVER (PARTITION BY conversation_id, seg) AS pending_since
    FROM ordered
)
SELECT id, conversation_id, role, created_at, channel, external_user_id, pending_since,
       (created_at AT TIME ZONE 'UTC')::date AS day,
       CASE WHEN role = 'agent' AND pending_since IS NOT NULL THEN
           width_bucket((EXTRACT(EPOCH FROM created_at - pending_since) * 1000000)::bigint,
                        %(bounds)s::bigint[]) + 1
       END AS slot
FROM stretch
"""

REBUILD_CONVERSATIONS_SQL = """
CREATE TEMPORARY TABLE rebuild_conversations ON COMMIT DROP AS
SELECT c.id, c.channel, (c.started_at AT TIME ZONE 'UTC')::date AS start_day,
       (SELECT MIN(r.created_at) FROM rebuild_messages r
        WHERE r.conversation_id = c.id AND r.slot IS NOT NULL) AS first_response_at,
       last.created_at AS last_at,
       CASE WHEN last.role = 'agent' THEN NULL ELSE last.pending_since END AS pending_since
FROM agent_conversations c
LEFT JOIN LATERAL (
    SELECT r.created_at, r.role, r.pending_since FROM rebuild_messages r
    WHERE r.conversation_id = c.id ORDER BY r.created_at DESC, r.id DESC LIMIT 1
) last ON true
WHERE c.agent_id = %(agent)s AND (c.last_message_at >= %(since)s OR c.started_at >= %(since)s)
"""

REBUILD_USERS_SQL = """
INSERT INTO agent_activity_users (agent_id, day, channel, external_user_id)
SELECT DISTINCT %(agent)s::uuid, day, channel, external_user_id FROM rebuild_messages
WHERE external_user_id IS NOT NULL AND day >= %(since_day)s
"""

# The end users of each day from the day, by the day each was last active before (also
# before the day the rebuild starts from, whose rows are kept).
REBUILD_RETURNS_SQL = """
INSERT INTO agent_activity_returns (agent_id, day, channel, previous_day, end_users)
SELECT %(agent)s, day, channel, previous_day, COUNT(*) FROM (
    SELECT day, channel, COALESCE(LAG(day) OVER (
               PARTITION BY channel, external_user_id ORDER BY day), %(never)s::date)
               AS previous_day
    FROM agent_activity_users WHERE agent_id = %(agent)s
) u
WHERE day >= %(since_day)s
GROUP BY day, channel, previous_day
"""

# Three sources of counts per (day, channel): the messages of the day, the answers given
# that day (with their histograms, built from per-bucket counts), and the conversations
# started that day with whether they have been answered.
REBUILD_DAYS_SQL = """
WITH slots AS (
    SELECT r.day, r.channel, r.slot, COUNT(*) AS answers,
           COUNT(*) FILTER (WHERE r.created_at = c.first_response_at) AS firsts
    FROM rebuild_messages r JOIN rebuild_conversations c ON c.id = r.conversation_id
    WHERE r.slot IS NOT NULL GROUP BY 1, 2, 3
),
answer_days AS (
    SELECT d.day, d.channel, SUM(s.answers) AS responses, SUM(s.firsts) AS first_responses,
           ARRAY(SELECT COALESCE(SUM(x.answers), 0)::int FROM generate_series(1, %(buckets)s) b
                 LEFT JOIN slots x ON (x.day, x.channel, x.slot) = (d.day, d.channel, b)
                 GROUP BY b ORDER BY b) AS response_buckets,
           ARRAY(SELECT COALESCE(SUM(x.firsts), 0)::int FROM generate_series(1, %(buckets)s) b
                 LEFT JOIN slots x ON (x.day, x.channel, x.slot) = (d.day, d.channel, b)
                 GROUP BY b ORDER BY b) AS first_response_buckets
    FROM (SELECT DISTINCT day, channel FROM slots) d
    JOIN slots s ON (s.day, s.channel) = (d.day, d.channel)
    GROUP BY d.day, d.channel
),
events AS (
    SELECT day, channel, COUNT(DISTINCT conversation_id) AS active_conversations,
           COUNT(DISTINCT external_user_id) AS end_users,
           COUNT(*) FILTER (WHERE role = 'user') AS user_messages,
           COUNT(*) FILTER (WHERE role = 'agent') AS agent_messages,
           COUNT(*) FILTER (WHERE role = 'system') AS system_messages,
           COUNT(*) FILTER (WHERE role = 'tool') AS tool_messages,
           0 AS conversations_started, 0 AS conversations_answered,
           0 AS responses, NULL::int[] AS response_buckets,
           0 AS first_responses, NULL::int[] AS first_response_buckets
    FROM rebuild_messages GROUP BY 1, 2
    UNION ALL
    SELECT day, channel, 0, 0, 0, 0, 0, 0, 0, 0, responses, response_buckets,
           first_responses, first_response_buckets
    FROM answer_days
    UNION ALL
    SELECT start_day, channel, 0, 0, 0, 0, 0, 0, COUNT(*),
           COUNT(*) FILTER (WHERE first_response_at IS NOT NULL), 0, NULL, 0, NULL
    FROM rebuild_conversations GROUP BY 1, 2
)
INSERT INTO agent_activity_days (
    agent_id, day, channel, active_conversations, end_users, user_messages, agent_messages,
    system_messages, tool_messages, conversations_started, conversations_answered,
    responses, response_buckets, first_responses, first_response_buckets
)
SELECT %(agent)s, day, channel, SUM(active_conversations), SUM(end_users),
       SUM(user_messages), SUM(agent_messages), SUM(system_messages), SUM(tool_messages),
       SUM(conversations_started), SUM(conversations_answered), SUM(responses),
       COALESCE(MAX(response_buckets), %(empty)s::int[]), SUM(first_responses),
       COALESCE(MAX(first_response_buckets), %(empty)s::int[])
FROM events
WHERE day >= %(since_day)s
GROUP BY day, channel
"""

# A day's rows over all channels from its per-channel rows (histograms summed bucket by bucket).
REBUILD_TOTALS_SQL = """
INSERT INTO agent_activity_day_totals (
    agent_id, day, conversations_started, conversations_answered, active_conversations,
    end_users, user_messages, agent_messages, system_messages, tool_messages,
    responses, response_buckets, first_responses, first_response_buckets
)
SELECT d.agent_id, d.day, SUM(conversations_started), SUM(conversations_answered),
       SUM(active_conversations), SUM(end_users), SUM(user_messages), SUM(agent_messages),
       SUM(system_messages), SUM(tool_messages), SUM(responses),
       (SELECT array_agg(n ORDER BY slot) FROM (
            SELECT u.slot, SUM(u.n)::int AS n FROM agent_activity_days x,
                   unnest(x.response_buckets) WITH ORDINALITY AS u(n, slot)
            WHERE x.agent_id = d.agent_id AND x.day = d.day GROUP BY u.slot) b),
       SUM(first_responses),
       (SELECT array_agg(n ORDER BY slot) FROM (
            SELECT u.slot, SUM(u.n)::int AS n FROM agent_activity_days x,
                   unnest(x.first_response_buckets) WITH ORDINALITY AS u(n, slot)
            WHERE x.agent_id = d.agent_id AND x.day = d.day GROUP BY u.slot) b)
FROM agent_activity_days d
WHERE d.agent_id = %(agent)s AND d.day >= %(since_day)s
GROUP BY d.agent_id, d.day
"""

REBUILD_STATE_SQL = """
UPDATE agent_conversations c
SET reply_pending_since = r.pending_since, first_response_at = r.first_response_at,
    activity_day = (r.last_at AT TIME ZONE 'UTC')::date
FROM rebuild_conversations r WHERE r.id = c.id
"""


def rollups_rebuild_agent(*, agent_id: uuid.UUID, since: dt.date | None = None) -> None:
    """Recompute the agent's rollup rows from `since` (a UTC day; all days if None) from its
    messages, and its conversations' analytics state.

    The agent is locked FOR UPDATE until commit: its messages, which share-lock it, wait, so
    nothing is added to the rows while they are recomputed.
    """
    since_day = since or dt.date(1, 1, 1)
    parameters: dict[str, Any] = {
        "agent": agent_id,
        "since": dt.datetime.combine(since_day, dt.time(), tzinfo=dt.UTC),
        "since_day": since_day,
        "bounds": list(RESPONSE_BUCKET_BOUNDS_US),
        "buckets": RESPONSE_BUCKETS,
        "empty": one_hot(None),
        "never": NEVER_ACTIVE_BEFORE,
    }
    with transaction.atomic():
        if not agents_lock([agent_id]):
            return
        with connection.cursor() as cursor:
            for table in (
                "agent_activity_days", "agent_activity_day_totals", "agent_activity_users",
                "agent_activity_returns",
            ):  # fmt: skip
                cursor.execute(
                    f"DELETE FROM {table} WHERE agent_id = %(agent)s"  # noqa: S608 (ours)
                    " AND day >= %(since_day)s",
                    parameters,
                )
            for statement in (
                REBUILD_MESSAGES_SQL,
                REBUILD_CONVERSATIONS_SQL,
                REBUILD_USERS_SQL,
                REBUILD_RETURNS_SQL,
                REBUILD_DAYS_SQL,
                REBUILD_TOTALS_SQL,
                REBUILD_STATE_SQL,
            ):
                cursor.execute(statement, parameters)
            # Also inside a caller's transaction, where ON COMMIT has not come yet.
            cursor.execute("DROP TABLE rebuild_conversations, rebuild_messages")


def rollups_rebuild(*, agent_id: uuid.UUID | None = None, since: dt.date | None = None) -> int:
    """Rebuild one agent's rollup, or every agent's (each in its own transaction); return how
    many agents were rebuilt."""
    if agent_id is not None:
        agent_ids = [agent_id]
    else:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM a1_agents ORDER BY id")
            agent_ids = [row[0] for row in cursor.fetchall()]
    for each in agent_ids:
        rollups_rebuild_agent(agent_id=each, since=since)
    return len(agent_ids)
