"""The benchmark's data: reset the bench database, fill it with generate_demo_data, pick rows.

The demo data is written by `manage.py generate_demo_data` in a child process, so its time
and peak memory (RSS) are measured as an operator would see them.
"""

import datetime as dt
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Everything generate_demo_data and the benchmarks write; plans and staff accounts stay.
DEMO_TABLES = (
    "stack_users", "user_subscriptions", "apps", "a1_agents", "agent_usage", "usage_event_ids",
    "user_monthly_usage", "agent_conversations", "messages", "billing_events",
    "agent_integrations", "agent_activity_days", "agent_activity_users",
)  # fmt: skip
LONG_CONVERSATION_MESSAGES = 200


@dataclass(frozen=True)
class Generated:
    agents: int
    seconds: float
    peak_rss_mib: float
    summary: str


def reset(env: dict[str, str]) -> None:
    """Empty the demo tables of the bench database (TRUNCATE: instant at any size), and the
    tables that reference them (CASCADE: an app's new table under agents cannot break it)."""
    import psycopg

    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as connection:
        connection.execute(f"TRUNCATE {', '.join(DEMO_TABLES)} CASCADE")


def generate(env: dict[str, str], *, users: int, agents_per_user: int, days: int,
             messages_per_day: int, seed: int, end: dt.date) -> Generated:  # fmt: skip
    """Run generate_demo_data in a child process; return its wall time and peak RSS."""
    command = [
        sys.executable, "manage.py", "generate_demo_data", "--users", str(users),
        "--agents-per-user", str(agents_per_user), "--days", str(days),
        "--messages-per-day", str(messages_per_day), "--seed", str(seed),
        "--end-date", end.isoformat(), "--verbosity", "0",
    ]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    peak = _PeakMemory(process.pid)
    peak.start()
    summary, _ = process.communicate()
    seconds = time.perf_counter() - started
    peak.join()
    if process.returncode != 0:
        raise SystemExit(f"generate_demo_data failed ({process.returncode}): {summary}")
    print(f"[bench] {summary.strip()}", file=sys.stderr, flush=True)
    return Generated(users * agents_per_user, seconds, peak.mib, summary.strip())


class _PeakMemory(threading.Thread):
    """Follow a process's peak RSS (VmHWM) until it exits.

    Not getrusage's ru_maxrss: a child forked from this process starts with our own pages,
    and Linux keeps that high-water mark across exec, so it would report the bench's size.
    VmHWM belongs to the process's own memory, which exec replaced.
    """

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.status = Path(f"/proc/{pid}/status")
        self.mib = 0.0

    def run(self) -> None:
        while True:
            try:
                text = self.status.read_text()
            except OSError:
                return
            for line in text.splitlines():
                if line.startswith("VmHWM:"):
                    self.mib = max(self.mib, int(line.split()[1]) / 1024)
                elif line.startswith("State:") and "Z" in line.split()[1]:
                    return
            time.sleep(0.1)


def last_day_of_previous_month(today: dt.date) -> dt.date:
    return today.replace(day=1) - dt.timedelta(days=1)


def agent_count() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM a1_agents")
        return int(cursor.fetchone()[0])


def owner_with_agents(agents: int) -> str:
    """A paying demo owner with `agents` agents (the agents list's page)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.owner_id FROM a1_agents a
            JOIN user_subscriptions s ON s.user_id = a.owner_id AND s.plan_id <> 'free'
            GROUP BY a.owner_id HAVING count(*) = %s ORDER BY a.owner_id LIMIT 1
            """,
            [agents],
        )
        row = cursor.fetchone()
    if row is None:
        raise SystemExit("No demo owner with that many agents: generate the data first.")
    return str(row[0])


def long_conversation(owner_id: str) -> str:
    """Open a conversation with LONG_CONVERSATION_MESSAGES messages for one of the owner's
    agents (the demo's conversations are short), and return its id."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO agent_conversations (agent_id, channel, external_user_id)
            SELECT id, 'web', 'bench-reader' FROM a1_agents
            WHERE owner_id = %s ORDER BY id LIMIT 1
            RETURNING id, agent_id
            """,
            [owner_id],
        )
        conversation_id, agent_id = cursor.fetchone()
        cursor.execute(
            """
            INSERT INTO messages (agent_id, conversation_id, role, content, created_at)
            SELECT %s, %s, CASE WHEN n %% 2 = 0 THEN 'user' ELSE 'agent' END,
                   'Message number ' || n || ' of a long conversation, about as long as a '
                   || 'real chat message tends to be.',
                   now() - make_interval(mins => %s - n)
            FROM generate_series(1, %s) AS n
            """,
            [agent_id, conversation_id, LONG_CONVERSATION_MESSAGES, LONG_CONVERSATION_MESSAGES],
        )
    return str(conversation_id)


def any_handle() -> str:
    """The handle of some agent, picked by its random id (the admin search looks it up)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT handle FROM a1_agents ORDER BY id LIMIT 1")
        return str(cursor.fetchone()[0])


def lift_rate_limits() -> None:
    """Let one owner and one app send thousands of requests a minute (the bench database)."""
    from django.core.cache import cache
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE subscription_plans SET owner_requests_per_minute = 10000000, "
            "app_requests_per_minute = 10000000"
        )
    cache.clear()  # the bench's own Redis database: cached rates and throttle counters
