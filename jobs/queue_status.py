"""What the broker and the workers say about the work in flight: queued, running, waiting.

Read through Celery (kombu for the queue length, the workers' remote control for what they
run), so it works with any broker Celery supports. Each answer says when nobody answered
rather than raising: these are for an operator's screen and a readiness probe.
"""

from dataclasses import dataclass, field
from typing import Any

from celery import current_app
from django.conf import settings
from kombu.exceptions import ChannelError

BROKER_TIMEOUT = 2.0


class BrokerUnreachable(Exception):
    """The broker at CELERY_BROKER_URL does not answer."""


def broker_connection() -> Any:
    """A connection to the broker that gives up after BROKER_TIMEOUT seconds."""
    return current_app.connection_for_write(
        url=settings.CELERY_BROKER_URL,
        connect_timeout=BROKER_TIMEOUT,
        transport_options={
            **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            "socket_timeout": BROKER_TIMEOUT,
            "socket_connect_timeout": BROKER_TIMEOUT,
            "max_retries": 0,
        },
    )


def broker_answers() -> bool:
    """Tell whether the broker accepts a connection now."""
    try:
        with broker_connection() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT)
            conn.default_channel  # noqa: B018 (opening a channel talks to the broker)
        return True
    except Exception:
        return False


def queued_counts() -> dict[str, int]:
    """Messages waiting in each queue the workers consume (not those a worker holds)."""
    names = [queue.name for queue in current_app.amqp.queues.consume_from.values()] or [
        current_app.conf.task_default_queue
    ]
    try:
        with broker_connection() as conn:
            return {name: _queue_length(conn, name) for name in names}
    except Exception as error:
        raise BrokerUnreachable(f"{type(error).__name__}: {error}") from None


def _queue_length(conn: Any, name: str) -> int:
    # A channel per queue: a failed passive declare closes its channel on AMQP brokers.
    channel = conn.channel()
    try:
        return int(channel.queue_declare(queue=name, passive=True).message_count)
    except ChannelError:
        return 0  # never declared: nothing was ever sent to it
    finally:
        channel.close()


@dataclass
class WorkerReport:
    """What the workers answered within the timeout (`answered` is empty if none did)."""

    answered: list[str] = field(default_factory=list)
    running: list[dict[str, Any]] = field(default_factory=list)
    waiting: list[dict[str, Any]] = field(default_factory=list)


def worker_report(timeout: float = 1.0) -> WorkerReport:
    """Ask every worker what it runs now and what it holds for a later retry."""
    report = WorkerReport()
    try:
        with broker_connection() as conn:
            inspect = current_app.control.inspect(timeout=timeout, connection=conn)
            active = inspect.active() or {}
            scheduled = inspect.scheduled() or {}
    except Exception as error:
        raise BrokerUnreachable(f"{type(error).__name__}: {error}") from None
    report.answered = sorted(set(active) | set(scheduled))
    for worker, tasks in sorted(active.items()):
        report.running.extend({"worker": worker, **task} for task in tasks)
    for worker, entries in sorted(scheduled.items()):
        for entry in entries:
            report.waiting.extend([{"worker": worker, "eta": entry.get("eta"), **entry["request"]}])
    return report
