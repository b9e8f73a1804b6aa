"""generate_demo_data: the right rows, valid handles, the same data for the same seed."""

import datetime as dt
import io
import re
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Sum

from accounts.models import StackUser
from agents.handles import handle_problem
from agents.models import A1Agent, App
from billing.models import SubscriptionPlan, UserSubscription
from conversations.models import AgentConversation, Message
from demo.data import DemoOptions, demo_email_domain
from usage.models import AgentUsage, UserMonthlyUsage

pytestmark = pytest.mark.django_db

END = dt.date(2025, 3, 2)  # the window crosses a month: Feb 28, Mar 1, Mar 2
TINY = {
    "users": 3,
    "agents_per_user": 2,
    "days": 3,
    "messages_per_day": 8,
    "message_days": 2,
    "seed": 7,
    "end_date": END.isoformat(),
    "encrypt_every": 2,
}


def generate(**overrides: Any) -> str:
    options = {**TINY, **overrides}
    arguments = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        arguments += [flag] if value is True else [flag, str(value)]
    out = io.StringIO()
    call_command("generate_demo_data", *arguments, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def check_foreign_keys() -> None:
    """The foreign keys are deferred to commit, which a test never reaches: check them now."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Everything the generator writes, except what is random by design (key hashes and
    ciphertext) and the time of the run."""
    return {
        "users": list(
            StackUser.objects.order_by("id").values_list(
                "id", "email", "display_name", "first_seen_at", "last_seen_at"
            )
        ),
        "subscriptions": list(
            UserSubscription.objects.order_by("user_id").values_list(
                "id", "user_id", "plan_id", "status", "max_total_agents", "past_due_since"
            )
        ),
        "agents": [
            (
                a.id,
                a.owner_id,
                a.app_id,
                a.handle,
                a.name,
                a.status,
                a.agent_type,
                a.email,
                a.phone_number,
                a.onboarding_data,
                a.created_at,
            )
            for a in A1Agent.objects.order_by("id")
        ],
        "apps": list(App.objects.order_by("id").values_list("id", "agent_id", "key_prefix")),
        "usage": list(
            AgentUsage.objects.order_by("id").values_list(
                "id",
                "agent_id",
                "date",
                "message_count",
                "api_calls",
                "compute_seconds",
                "storage_bytes",
                "estimated_cost",
            )
        ),
        "monthly": list(
            UserMonthlyUsage.objects.order_by("user_id", "month").values_list(
                "user_id", "month", "message_count"
            )
        ),
        "conversations": list(
            AgentConversation.objects.order_by("id").values_list(
                "id", "agent_id", "channel", "thread_id", "status", "started_at", "last_message_at"
            )
        ),
        "messages": list(
            Message.objects.order_by("id").values_list(
                "id", "agent_id", "conversation_id", "role", "content", "created_at"
            )
        ),
    }


def delete_demo_data() -> None:
    A1Agent.objects.all().delete()  # the database cascades to apps, usage and conversations
    UserMonthlyUsage.objects.all().delete()
    UserSubscription.objects.all().delete()
    StackUser.objects.all().delete()


def test_a_tiny_run_writes_the_expected_rows() -> None:
    output = generate()
    check_foreign_keys()

    expected = DemoOptions(
        users=3, agents_per_user=2, days=3, messages_per_day=8, message_days=2
    ).expected_rows()
    assert expected == {
        "stack_users": 3,
        "user_subscriptions": 3,
        "apps": 6,
        "a1_agents": 6,
        "agent_usage": 18,
        "agent_conversations": 6 * 2 * 2,  # 8 messages a day: conversations of 6 and 2
        "messages": 6 * 2 * 8,
    }
    assert StackUser.objects.count() == 3
    assert UserSubscription.objects.count() == 3
    assert App.objects.count() == A1Agent.objects.count() == 6
    assert AgentUsage.objects.count() == 18
    assert AgentConversation.objects.count() == 24
    assert Message.objects.count() == 96
    assert "Seed 7: users 0-2" in output

    domain = demo_email_domain(7)
    emails = StackUser.objects.values_list("email", flat=True)
    assert all((email or "").endswith("@" + domain) for email in emails)
    owners = set(StackUser.objects.values_list("id", flat=True))
    assert set(A1Agent.objects.values_list("owner_id", flat=True)) == owners
    assert set(UserSubscription.objects.values_list("user_id", flat=True)) == owners
    # Each agent and its app point at each other.
    for agent in A1Agent.objects.select_related("app"):
        assert agent.app.agent_id == agent.id
    # Every day of the window, for every agent.
    assert set(AgentUsage.objects.values_list("date", flat=True)) == {
        END - dt.timedelta(days=2), END - dt.timedelta(days=1), END,
    }  # fmt: skip
    # Messages only on the last two days, each in a conversation of the same agent.
    days = {m.created_at.date() for m in Message.objects.all()}
    assert days <= {END - dt.timedelta(days=1), END}
    for message in Message.objects.select_related("conversation"):
        assert message.conversation is not None
        assert message.conversation.agent_id == message.agent_id


def test_handles_are_valid_and_unique_without_regard_to_case() -> None:
    generate(users=20, agents_per_user=3, days=1, messages_per_day=0)
    check_foreign_keys()

    handles = list(A1Agent.objects.values_list("handle", flat=True))
    assert len(handles) == 60
    for handle in handles:
        assert re.fullmatch(r"[A-Za-z0-9_]{3,30}", handle), handle
        assert handle_problem(handle) is None, handle
    assert len({handle.lower() for handle in handles}) == len(handles)


def test_owners_plans_fit_their_agents_and_usage_matches_the_monthly_counters() -> None:
    generate(users=12, agents_per_user=2, messages_per_day=0, encrypt_every=1)
    check_foreign_keys()

    plans = {plan.id: plan for plan in SubscriptionPlan.objects.all()}
    for subscription in UserSubscription.objects.all():
        plan = plans[subscription.plan_id]
        agents = A1Agent.objects.filter(owner_id=subscription.user_id)
        if subscription.status != "cancelled" and plan.max_personal_agents != -1:
            assert agents.filter(agent_type="personal").count() <= plan.max_personal_agents
            assert agents.filter(agent_type="work").count() <= plan.max_work_agents
        for month in (dt.date(2025, 2, 1), dt.date(2025, 3, 1)):
            used = (
                AgentUsage.objects.filter(
                    agent__owner_id=subscription.user_id,
                    date__gte=month,
                    date__lt=(month + dt.timedelta(days=32)).replace(day=1),
                ).aggregate(total=Sum("message_count"))["total"]
                or 0
            )
            counter = UserMonthlyUsage.objects.filter(
                user_id=subscription.user_id, month=month
            ).first()
            assert (counter.message_count if counter else 0) == used
            if plan.messages_hard_cap:
                assert used <= (plan.max_messages_per_month or 0)
    # Contact details are encrypted at rest and read back in clear.
    agent = A1Agent.objects.first()
    assert agent is not None
    assert agent.email
    assert agent.email.startswith(agent.handle)
    with connection.cursor() as cursor:
        cursor.execute("SELECT email FROM a1_agents WHERE id = %s", [agent.id])
        assert cursor.fetchone()[0].startswith("gAAAAA")


def test_the_same_seed_gives_the_same_data() -> None:
    generate()
    first = snapshot()
    delete_demo_data()

    generate()
    assert snapshot() == first

    delete_demo_data()
    generate(seed=8)
    other = snapshot()
    assert {row[3] for row in other["agents"]}.isdisjoint({row[3] for row in first["agents"]})


def test_a_used_seed_is_refused_and_append_adds_new_owners() -> None:
    generate(messages_per_day=0)
    before = set(A1Agent.objects.values_list("handle", flat=True))

    with pytest.raises(CommandError, match="already exists"):
        generate(messages_per_day=0)
    assert A1Agent.objects.count() == 6

    output = generate(messages_per_day=0, append=True)
    check_foreign_keys()
    assert "users 3-5" in output
    assert StackUser.objects.count() == 6
    after = set(A1Agent.objects.values_list("handle", flat=True))
    assert len(after) == 12
    assert before < after


def test_invalid_sizes_are_refused() -> None:
    with pytest.raises(CommandError, match="agents per user"):
        generate(agents_per_user=0)
    assert not A1Agent.objects.exists()


def test_the_models_need_no_new_migration() -> None:
    call_command("makemigrations", "--check", "--dry-run", stdout=io.StringIO())


def test_every_column_the_generator_leaves_out_has_a_default_or_is_nullable() -> None:
    from django.db.models import NOT_PROVIDED

    from demo.data import COLUMNS, WRITTEN_FIELDS

    for model, _ in WRITTEN_FIELDS:
        written = set(COLUMNS[model._meta.db_table].split(", "))
        for field in model._meta.concrete_fields:
            if field.column in written:
                continue
            assert field.null or field.db_default is not NOT_PROVIDED, (
                f"{model._meta.db_table}.{field.column} is neither written by the demo "
                "generator nor nullable nor defaulted by the database"
            )
