"""The seed's DDL holds in PostgreSQL itself: plain SQL gets the same rules as the ORM."""

import datetime as dt
import json
import uuid
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from agents.models import A1Agent, App
from billing.models import SubscriptionPlan, UserSubscription
from conversations.models import AgentConversation, Message
from integrations.models import AgentIntegration
from tests.factories import (
    AgentFactory,
    ConversationFactory,
    IntegrationFactory,
    MessageFactory,
    SubscriptionFactory,
    UsageFactory,
)
from usage.models import AgentUsage

pytestmark = pytest.mark.django_db


def sql(statement: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])
        return cursor.fetchall() if cursor.description else []


def decoded(value: object) -> object:
    """Decode a jsonb value: Django's psycopg setup hands raw cursors jsonb as text."""
    return json.loads(value) if isinstance(value, str) else value


def raw_insert_agent(**overrides: object) -> tuple[uuid.UUID, uuid.UUID]:
    """Insert an app and its agent with plain SQL; return (agent_id, app_id)."""
    columns: dict[str, Any] = {
        "owner_id": "user_raw",
        "name": "Raw",
        "handle": "raw_agent",
        "agent_type": "work",
    }
    columns.update(overrides)
    (app_id,) = sql("INSERT INTO apps DEFAULT VALUES RETURNING id")[0]
    names = ", ".join(["app_id", *columns])
    placeholders = ", ".join(["%s"] * (len(columns) + 1))
    (agent_id,) = sql(
        f"INSERT INTO a1_agents ({names}) VALUES ({placeholders}) RETURNING id",
        [app_id, *columns.values()],
    )[0]
    sql("UPDATE apps SET agent_id = %s WHERE id = %s", [agent_id, app_id])
    return agent_id, app_id


def refused(statement: str, params: list[Any] | None = None) -> bool:
    try:
        with transaction.atomic():
            sql(statement, params)
            # Deferred foreign keys are checked at commit; force the check here.
            sql("SET CONSTRAINTS ALL IMMEDIATE")
    except IntegrityError:
        return True
    return False


# --- defaults ------------------------------------------------------------------------------


def test_raw_insert_of_agent_gets_the_seed_defaults() -> None:
    agent_id, _ = raw_insert_agent()

    status, settings, created_at, updated_at = sql(
        "SELECT status, settings, created_at, updated_at FROM a1_agents WHERE id = %s", [agent_id]
    )[0]

    assert isinstance(agent_id, uuid.UUID)
    assert status == "active"
    assert decoded(settings) == {}
    assert created_at is not None
    assert updated_at is not None


def test_raw_insert_of_subscription_gets_free_plan_and_its_limits() -> None:
    row = sql(
        "INSERT INTO user_subscriptions (user_id) VALUES ('u1') RETURNING plan_id, status,"
        " max_personal_agents, max_work_agents, max_total_agents, created_at"
    )[0]

    assert row[:5] == ("free", "active", 1, 1, 2)
    assert row[5] is not None


def test_raw_insert_of_usage_conversation_integration_and_message_gets_defaults() -> None:
    agent_id, _ = raw_insert_agent()

    usage = sql(
        "INSERT INTO agent_usage (agent_id, date) VALUES (%s, '2026-01-01') RETURNING"
        " message_count, api_calls, storage_bytes, compute_seconds, estimated_cost",
        [agent_id],
    )[0]
    (conversation_id, conversation_status, metadata, started_at, last_message_at) = sql(
        "INSERT INTO agent_conversations (agent_id, channel) VALUES (%s, 'web') RETURNING id,"
        " status, metadata, started_at, last_message_at",
        [agent_id],
    )[0]
    integration = sql(
        "INSERT INTO agent_integrations (agent_id, provider) VALUES (%s, 'slack')"
        " RETURNING status, config",
        [agent_id],
    )[0]
    message = sql(
        "INSERT INTO messages (agent_id, conversation_id, role, content)"
        " VALUES (%s, %s, 'user', 'hi') RETURNING id, metadata, created_at",
        [agent_id, conversation_id],
    )[0]
    event = sql(
        "INSERT INTO billing_events (user_id, event_type) VALUES ('u1', 'x')"
        " RETURNING currency, metadata"
    )[0]

    assert usage == (0, 0, 0, 0, Decimal("0"))
    assert (conversation_status, decoded(metadata)) == ("active", {})
    assert started_at is not None
    assert last_message_at is not None
    assert (integration[0], decoded(integration[1])) == ("active", {})
    assert isinstance(message[0], uuid.UUID)
    assert decoded(message[1]) == {}
    assert message[2] is not None
    assert (event[0], decoded(event[1])) == ("USD", {})


def test_orm_rows_get_the_same_defaults_as_raw_sql() -> None:
    agent = AgentFactory.create()
    agent.refresh_from_db()

    assert agent.status == "active"
    assert agent.settings == {}
    assert UserSubscription.objects.create(user_id="u2").max_total_agents == 2


def test_default_plans_are_seeded() -> None:
    plans = {
        plan.id: (plan.max_personal_agents, plan.max_work_agents, plan.price_monthly)
        for plan in SubscriptionPlan.objects.all()
    }

    assert plans == {
        "free": (1, 1, Decimal("0.00")),
        "pro": (5, 5, Decimal("29.99")),
        "enterprise": (-1, -1, Decimal("99.99")),
    }


# --- CHECK and UNIQUE constraints ----------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("status", "deleted"),
        ("agent_type", "team"),
        ("handle", "has-dash"),
        ("handle", "has space"),
        ("handle", "ab"),
        ("handle", "x" * 31),
    ],
)
def test_invalid_agent_values_are_refused_by_the_database(column: str, value: str) -> None:
    agent_id, _ = raw_insert_agent()

    assert refused(f"UPDATE a1_agents SET {column} = %s WHERE id = %s", [value, agent_id])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "deleted"),
        ("agent_type", "team"),
        ("handle", "bad-handle"),
        ("handle", "bad handle"),
    ],
)
def test_invalid_agent_values_are_refused_through_the_orm(field: str, value: str) -> None:
    agent = AgentFactory.create()

    with pytest.raises(IntegrityError), transaction.atomic():
        A1Agent.objects.filter(pk=agent.pk).update(**{field: value})


def test_handles_are_unique_regardless_of_case() -> None:
    raw_insert_agent(handle="Support_Bot")

    assert refused(
        "INSERT INTO a1_agents (app_id, owner_id, name, handle, agent_type)"
        " VALUES ((INSERT_APP), 'u', 'n', 'support_bot', 'work')".replace(
            "(INSERT_APP)", "(SELECT id FROM apps LIMIT 1)"
        )
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        AgentFactory.create(handle="SUPPORT_BOT")


@pytest.mark.parametrize(
    ("statement", "params"),
    [
        ("INSERT INTO user_subscriptions (user_id, plan_id) VALUES ('u', 'gold')", []),
        ("INSERT INTO user_subscriptions (user_id, status) VALUES ('u', 'frozen')", []),
        ("INSERT INTO apps (status) VALUES ('deleted')", []),
    ],
)
def test_invalid_subscription_and_app_values_are_refused(statement: str, params: list[Any]) -> None:
    assert refused(statement, params)


def test_one_subscription_per_user() -> None:
    SubscriptionFactory.create(user_id="same")

    assert refused("INSERT INTO user_subscriptions (user_id) VALUES ('same')")


def test_second_usage_row_for_same_agent_and_date_is_refused() -> None:
    usage = UsageFactory.create(date=dt.date(2026, 3, 1))

    assert refused(
        "INSERT INTO agent_usage (agent_id, date) VALUES (%s, '2026-03-01')", [usage.agent_id]
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        AgentUsage.objects.create(agent_id=usage.agent_id, date=dt.date(2026, 3, 1))


def test_one_integration_per_agent_and_provider() -> None:
    integration = IntegrationFactory.create(provider="slack")

    assert refused(
        "INSERT INTO agent_integrations (agent_id, provider) VALUES (%s, 'slack')",
        [integration.agent_id],
    )


def test_app_belongs_to_one_agent_and_agent_to_one_app() -> None:
    first = AgentFactory.create()
    second = AgentFactory.create()

    assert refused("UPDATE apps SET agent_id = %s WHERE id = %s", [first.pk, second.app_id])
    assert refused("UPDATE a1_agents SET app_id = %s WHERE id = %s", [first.app_id, second.pk])


def test_foreign_keys_are_enforced() -> None:
    assert refused(
        "INSERT INTO agent_usage (agent_id, date) VALUES (%s, '2026-01-01')", [uuid.uuid4()]
    )
    assert refused(
        "INSERT INTO messages (conversation_id, role, content) VALUES (%s, 'user', 'x')",
        [uuid.uuid4()],
    )


def test_message_role_is_checked() -> None:
    conversation = ConversationFactory.create()

    assert refused(
        "INSERT INTO messages (agent_id, conversation_id, role, content)"
        " VALUES (%s, %s, 'robot', 'x')",
        [conversation.agent_id, conversation.pk],
    )


# --- cascades ------------------------------------------------------------------------------


def make_agent_with_everything() -> A1Agent:
    agent = AgentFactory.create()
    UsageFactory.create(agent=agent)
    conversation = ConversationFactory.create(agent=agent)
    MessageFactory.create(conversation=conversation)
    IntegrationFactory.create(agent=agent)
    return agent


def everything_of(agent: A1Agent) -> dict[str, int]:
    return {
        "agents": A1Agent.objects.filter(pk=agent.pk).count(),
        "apps": App.objects.filter(pk=agent.app_id).count(),
        "usage": AgentUsage.objects.filter(agent_id=agent.pk).count(),
        "conversations": AgentConversation.objects.filter(agent_id=agent.pk).count(),
        "messages": Message.objects.filter(agent_id=agent.pk).count(),
        "integrations": AgentIntegration.objects.filter(agent_id=agent.pk).count(),
    }


def test_delete_from_apps_removes_the_agent_and_everything_under_it() -> None:
    agent = make_agent_with_everything()
    survivor = make_agent_with_everything()

    sql("DELETE FROM apps WHERE id = %s", [agent.app_id])

    assert set(everything_of(agent).values()) == {0}
    assert set(everything_of(survivor).values()) == {1}


def test_delete_from_agents_removes_its_app_and_everything_under_it() -> None:
    agent = make_agent_with_everything()

    sql("DELETE FROM a1_agents WHERE id = %s", [agent.pk])

    assert set(everything_of(agent).values()) == {0}


def test_orm_delete_of_an_agent_cascades_in_the_database() -> None:
    agent = make_agent_with_everything()

    A1Agent.objects.filter(pk=agent.pk).delete()

    assert set(everything_of(agent).values()) == {0}


def test_deleting_a_conversation_removes_its_messages() -> None:
    message = MessageFactory.create()

    sql("DELETE FROM agent_conversations WHERE id = %s", [message.conversation_id])

    assert not Message.objects.filter(pk=message.pk).exists()


# --- catalogue: the schema matches the seed's DDL ------------------------------------------

EXPECTED_CASCADES = {
    ("a1_agents", "app_id", "apps"),
    ("apps", "agent_id", "a1_agents"),
    ("agent_usage", "agent_id", "a1_agents"),
    ("usage_event_ids", "agent_id", "a1_agents"),
    ("agent_conversations", "agent_id", "a1_agents"),
    ("agent_integrations", "agent_id", "a1_agents"),
    ("messages", "agent_id", "a1_agents"),
    ("messages", "conversation_id", "agent_conversations"),
}


def test_every_seed_cascade_is_in_the_database() -> None:
    rows = sql(
        """
        SELECT con.conrelid::regclass::text, att.attname, con.confrelid::regclass::text,
               con.confdeltype
        FROM pg_constraint con
        JOIN pg_attribute att ON att.attrelid = con.conrelid AND att.attnum = con.conkey[1]
        WHERE con.contype = 'f' AND con.conrelid::regclass::text = ANY(%s)
        """,
        [sorted({table for table, _, _ in EXPECTED_CASCADES} | {"billing_events"})],
    )
    cascading = {(table, column, target) for table, column, target, kind in rows if kind == "c"}

    assert cascading == EXPECTED_CASCADES
    assert ("billing_events", "subscription_id", "user_subscriptions", "a") in rows


SEED_INDEXES = {
    "idx_a1_agents_owner_id",
    "idx_a1_agents_handle",
    "idx_a1_agents_status",
    "idx_agent_usage_agent_id_date",
    "idx_billing_events_user_id",
    "idx_billing_events_type",
    "idx_agent_conversations_agent_id",
    "idx_agent_conversations_external_user",
}
SEED_CONSTRAINTS = {
    ("a1_agents", "valid_agent_type"),
    ("a1_agents", "valid_status"),
    ("a1_agents", "valid_handle"),
    ("a1_agents", "a1_agents_handle_key"),
    ("a1_agents", "a1_agents_app_id_key"),
    ("user_subscriptions", "valid_plan"),
    ("user_subscriptions", "valid_status"),
    ("user_subscriptions", "user_subscriptions_user_id_key"),
    ("agent_usage", "unique_agent_date"),
    ("agent_integrations", "unique_agent_provider"),
    ("apps", "apps_agent_id_key"),
}


def test_seed_indexes_and_constraints_exist_under_their_seed_names() -> None:
    indexes = {
        name for (name,) in sql("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
    }
    constraints = set(
        sql(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint"
            " WHERE contype IN ('c', 'u')"
        )
    )

    assert indexes >= SEED_INDEXES
    assert constraints >= SEED_CONSTRAINTS


SEED_COLUMNS = {
    # table: {column: (data_type, is_nullable, default contains)}
    "a1_agents": {
        "id": ("uuid", "NO", "gen_random_uuid()"),
        "owner_id": ("text", "NO", None),
        "app_id": ("uuid", "NO", None),
        "name": ("text", "NO", None),
        "handle": ("text", "NO", None),
        "description": ("text", "YES", None),
        "avatar_url": ("text", "YES", None),
        "email": ("text", "YES", None),
        "phone_number": ("text", "YES", None),
        "whatsapp_number": ("text", "YES", None),
        "base_website": ("text", "YES", None),
        "custom_website": ("text", "YES", None),
        "onboarding_data": ("jsonb", "YES", None),
        "settings": ("jsonb", "YES", "'{}'"),
        "status": ("text", "YES", "'active'"),
        "agent_type": ("text", "NO", None),
        "created_at": ("timestamp with time zone", "NO", "CURRENT_TIMESTAMP"),
        "updated_at": ("timestamp with time zone", "NO", "CURRENT_TIMESTAMP"),
    },
    "user_subscriptions": {
        "id": ("uuid", "NO", "gen_random_uuid()"),
        "user_id": ("text", "NO", None),
        "plan_id": ("text", "NO", "'free'"),
        "status": ("text", "NO", "'active'"),
        "max_personal_agents": ("integer", "YES", "1"),
        "max_work_agents": ("integer", "YES", "1"),
        "max_total_agents": ("integer", "YES", "2"),
        "stripe_customer_id": ("text", "YES", None),
        "stripe_subscription_id": ("text", "YES", None),
        "current_period_start": ("timestamp with time zone", "YES", None),
        "current_period_end": ("timestamp with time zone", "YES", None),
        "created_at": ("timestamp with time zone", "NO", "CURRENT_TIMESTAMP"),
        "updated_at": ("timestamp with time zone", "NO", "CURRENT_TIMESTAMP"),
        "cancelled_at": ("timestamp with time zone", "YES", None),
    },
    "subscription_plans": {
        "id": ("text", "NO", None),
        "name": ("text", "NO", None),
        "description": ("text", "YES", None),
        "price_monthly": ("numeric(10,2)", "YES", None),
        "price_yearly": ("numeric(10,2)", "YES", None),
        "currency": ("text", "YES", "'USD'"),
        "max_personal_agents": ("integer", "NO", None),
        "max_work_agents": ("integer", "NO", None),
        "max_messages_per_month": ("integer", "YES", None),
        "max_storage_gb": ("integer", "YES", None),
        "features": ("jsonb", "YES", "'[]'"),
        "is_active": ("boolean", "YES", "true"),
        "created_at": ("timestamp with time zone", "NO", "CURRENT_TIMESTAMP"),
        "updated_at": ("timestamp with time zone", "NO", "CURRENT_TIMESTAMP"),
    },
    "agent_usage": {
        "id": ("uuid", "NO", "gen_random_uuid()"),
        "agent_id": ("uuid", "NO", None),
        "date": ("date", "NO", None),
        "message_count": ("integer", "YES", "0"),
        "api_calls": ("integer", "YES", "0"),
        "storage_bytes": ("bigint", "YES", "0"),
        "compute_seconds": ("integer", "YES", "0"),
        "estimated_cost": ("numeric(10,4)", "YES", "0"),
        "created_at": ("timestamp with time zone", "NO", "CURRENT_TIMESTAMP"),
    },
    "billing_events": {
        "id": ("uuid", "NO", "gen_random_uuid()"),
        "user_id": ("text", "NO", None),
        "event_type": ("text", "NO", None),
        "amount": ("numeric(10,2)", "YES", None),
        "currency": ("text", "YES", "'USD'"),
        "description": ("text", "YES", None),
        "subscription_id": ("uuid", "YES", None),
        "invoice_id": ("text", "YES", None),
        "metadata": ("jsonb", "YES", "'{}'"),
        "created_at": ("timestamp with time zone", "NO", "CURRENT_TIMESTAMP"),
    },
    "agent_conversations": {
        "id": ("uuid", "NO", "gen_random_uuid()"),
        "agent_id": ("uuid", "NO", None),
        "external_user_id": ("text", "YES", None),
        "channel": ("text", "NO", None),
        "thread_id": ("text", "YES", None),
        "status": ("text", "YES", "'active'"),
        "started_at": ("timestamp with time zone", "NO", "CURRENT_TIMESTAMP"),
        "last_message_at": ("timestamp with time zone", "NO", "CURRENT_TIMESTAMP"),
        "ended_at": ("timestamp with time zone", "YES", None),
        "metadata": ("jsonb", "YES", "'{}'"),
    },
    "agent_integrations": {
        "id": ("uuid", "NO", "gen_random_uuid()"),
        "agent_id": ("uuid", "NO", None),
        "provider": ("text", "NO", None),
        "status": ("text", "YES", "'active'"),
        "config": ("jsonb", "NO", "'{}'"),
        "created_at": ("timestamp with time zone", "NO", "CURRENT_TIMESTAMP"),
        "updated_at": ("timestamp with time zone", "NO", "CURRENT_TIMESTAMP"),
        "last_sync_at": ("timestamp with time zone", "YES", None),
    },
    "apps": {"agent_id": ("uuid", "YES", None), "id": ("uuid", "NO", "gen_random_uuid()")},
    "messages": {
        "agent_id": ("uuid", "YES", None),
        "conversation_id": ("uuid", "YES", None),
        "metadata": ("jsonb", "YES", "'{}'"),
    },
}


@pytest.mark.parametrize("table", sorted(SEED_COLUMNS))
def test_columns_have_the_seed_types_nullability_and_defaults(table: str) -> None:
    rows = sql(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod),
               CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END,
               pg_get_expr(d.adbin, d.adrelid)
        FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
        """,
        [table],
    )
    actual = {name: (kind, nullable, default) for name, kind, nullable, default in rows}

    for column, (kind, nullable, default) in SEED_COLUMNS[table].items():
        assert column in actual, f"{table}.{column} is missing"
        assert actual[column][:2] == (kind, nullable), f"{table}.{column}"
        if default is None:
            assert actual[column][2] is None, f"{table}.{column} has a default"
        else:
            assert default in (actual[column][2] or ""), f"{table}.{column} default"


def test_migrations_are_complete() -> None:
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)

    assert "No changes detected" in out.getvalue()
