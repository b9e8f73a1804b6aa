"""Agent templates: publishing strips secrets, versions are immutable, clones follow their
template's updates without losing what their owner edited, moderation decides the listing."""

from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from agent_templates import services
from agent_templates.errors import ModerationRefused, TemplateNotFound, TemplateUpToDate
from agent_templates.models import AgentTemplate, AgentTemplateLink, AgentTemplateVersion
from agents.errors import AgentLimitReached, FieldInvalid
from agents.models import A1Agent
from agents.services import agent_create, agent_update
from audit.actors import Actor
from audit.models import AuditEntry
from billing.models import UserSubscription
from integrations.services import integration_create
from tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db

SECRETS = {
    "email": "secret-owner@example.com",
    "phone_number": "+1 555 0100 123",
    "whatsapp_number": "+44 7700 900123",
    "base_website": "https://secret-base.example.com",
    "custom_website": "https://secret-custom.example.com",
}
SLACK = {
    "bot_token": "xoxb-1111-2222-slackSECRET9012",
    "signing_secret": "8f742231b10e8888abcd3456",
    "channel_id": "C024BE91L",
}
TELEGRAM = {"bot_token": "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"}
ONBOARDING = {"questions": ["What is your order number?", "How can I help?"]}
SETTINGS = {"tone": "friendly", "language": "en"}


def secret_agent(
    owner_id: str = "author", handle: str = "support_bot"
) -> tuple[A1Agent, list[str]]:
    """An agent with every secret field set; return it and the secrets that must not leak."""
    agent, app_key = agent_create(
        owner_id=owner_id, name="Private Name", handle=handle, agent_type="work",
        description="Answers support questions.", avatar_url="https://cdn.example.com/a.png",
        onboarding_data=ONBOARDING, settings=SETTINGS, **SECRETS,
    )  # fmt: skip
    integration_create(agent_id=agent.pk, provider="slack", config=SLACK)
    integration_create(agent_id=agent.pk, provider="telegram", config=TELEGRAM)
    conversation = ConversationFactory.create(agent=agent, external_user_id="customer-4711")
    MessageFactory.create(conversation=conversation, content="my card is 4242 secret message")
    leaks = [
        *SECRETS.values(), app_key, agent.app.key_prefix, agent.app.key_hash or "",
        SLACK["bot_token"], SLACK["signing_secret"], SLACK["channel_id"], TELEGRAM["bot_token"],
        "customer-4711", "secret message", "Private Name", str(agent.app_id),
    ]  # fmt: skip
    return agent, leaks


def publish(agent: A1Agent, slug: str = "support_kit", **fields: Any) -> AgentTemplate:
    fields.setdefault("name", "Support kit")
    return services.template_create(owner_id=agent.owner_id, agent_id=agent.pk, slug=slug, **fields)


def table_text(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {table} t")
        return str(cursor.fetchone()[0])


def test_a_template_keeps_only_the_allow_listed_fields_and_no_secret_reaches_its_rows() -> None:
    agent, leaks = secret_agent()

    template = publish(agent, changelog="first")

    version = AgentTemplateVersion.objects.get(template=template)
    assert version.number == 1
    assert version.changelog == "first"
    assert version.snapshot == {
        "description": "Answers support questions.",
        "avatar_url": "https://cdn.example.com/a.png",
        "onboarding_data": ONBOARDING,
        "settings": SETTINGS,
        "agent_type": "work",
        "integrations": ["slack", "telegram"],
    }
    rows = " ".join(table_text(t) for t in ("agent_templates", "agent_template_versions"))
    assert [leak for leak in leaks if leak in rows] == []


def test_slugs_follow_the_handle_rules_and_are_unique_without_regard_to_case() -> None:
    agent, _ = secret_agent()
    publish(agent, slug="Support_Kit")

    for slug, message in [("ab", "3 to 30"), ("no-dashes", "letters"), ("admin", "reserved"),
                          ("support_kit", "taken")]:  # fmt: skip
        with pytest.raises(FieldInvalid) as refused:
            publish(agent, slug=slug)
        assert message in str(refused.value.extra["errors"]["slug"])


def test_the_database_refuses_bad_slugs_and_changes_to_a_version() -> None:
    agent, _ = secret_agent()
    template = publish(agent)

    with pytest.raises(IntegrityError), transaction.atomic():
        AgentTemplate.objects.filter(pk=template.pk).update(slug="has space")
    with pytest.raises(Exception, match="immutable"), transaction.atomic():
        AgentTemplateVersion.objects.filter(template=template).update(changelog="rewritten")
    with pytest.raises(IntegrityError), transaction.atomic():
        AgentTemplate.objects.filter(pk=template.pk).update(featured=True)  # not listed


def test_only_the_owners_own_agent_can_be_published() -> None:
    agent, _ = secret_agent()

    with pytest.raises(FieldInvalid) as refused:
        services.template_create(
            owner_id="someone_else", agent_id=agent.pk, slug="stolen", name="Stolen"
        )

    assert "agent" in refused.value.extra["errors"]


def test_publishing_again_adds_a_version_and_keeps_the_old_one() -> None:
    agent, _ = secret_agent()
    template = publish(agent)
    agent_update(agent=agent, description="Better answers.")

    version = services.template_publish_version(template=template, changelog="better answers")

    template.refresh_from_db()
    assert (version.number, template.latest_version) == (2, 2)
    assert [v.snapshot["description"] for v in template.versions.order_by("number")] == [
        "Answers support questions.",
        "Better answers.",
    ]


def test_deleting_the_source_agent_keeps_the_template_and_deleting_the_template_keeps_clones() -> (
    None
):
    agent, _ = secret_agent()
    template = publish(agent, visibility="unlisted")
    clone, _ = services.template_clone(template=template, owner_id="cloner", handle="my_clone")

    other, _ = services.template_clone(template=template, owner_id="cloner_2", handle="gone_clone")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM a1_agents WHERE id IN (%s, %s)", [agent.pk, other.pk])
    template.refresh_from_db()
    assert template.source_agent_id is None
    assert not AgentTemplateLink.objects.filter(agent_id=other.pk).exists()

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM agent_templates WHERE id = %s", [template.pk])
    assert not AgentTemplateLink.objects.filter(agent_id=clone.pk).exists()
    assert not AgentTemplateVersion.objects.filter(template_id=template.pk).exists()
    assert A1Agent.objects.filter(pk=clone.pk).exists()


# --- clone ---------------------------------------------------------------------------------


def test_a_clone_is_a_real_agent_with_the_templates_fields_and_none_of_the_secrets() -> None:
    agent, _ = secret_agent()
    template = publish(agent, visibility="unlisted")

    clone, app_key = services.template_clone(
        template=template, owner_id="cloner", handle="my_helper", actor=Actor.owner("cloner")
    )

    clone.refresh_from_db()
    assert app_key.startswith("a1app_")
    assert clone.app_id is not None
    assert (clone.owner_id, clone.handle, clone.name, clone.agent_type) == (
        "cloner", "my_helper", "Support kit", "work",
    )  # fmt: skip
    assert (clone.description, clone.onboarding_data, clone.settings) == (
        "Answers support questions.", ONBOARDING, SETTINGS,
    )  # fmt: skip
    assert (clone.email, clone.phone_number, clone.whatsapp_number, clone.base_website) == (
        None, None, None, None,
    )  # fmt: skip
    assert not clone.integrations.exists()
    link = AgentTemplateLink.objects.get(agent=clone)
    assert (link.template_id, link.version_number) == (template.pk, 1)
    template.refresh_from_db()
    assert template.clone_count == 1
    actions = set(AuditEntry.objects.filter(agent_id=clone.pk).values_list("action", flat=True))
    assert actions == {"agent.created", "agent_template.cloned"}


def test_a_clone_obeys_the_plan_limit_and_the_handle_rules() -> None:
    agent, _ = secret_agent()
    template = publish(agent, visibility="unlisted")
    UserSubscription.objects.create(
        user_id="cloner", max_personal_agents=1, max_work_agents=1, max_total_agents=1
    )
    services.template_clone(template=template, owner_id="cloner", handle="first_clone")

    with pytest.raises(AgentLimitReached):
        services.template_clone(template=template, owner_id="cloner", handle="second_clone")
    with pytest.raises(FieldInvalid):
        services.template_clone(template=template, owner_id="other", handle="support_bot")
    template.refresh_from_db()
    assert template.clone_count == 1
    assert AgentTemplateLink.objects.count() == 1


def test_a_private_or_hidden_template_cannot_be_cloned_by_others() -> None:
    agent, _ = secret_agent()
    template = publish(agent)  # private

    with pytest.raises(TemplateNotFound):
        services.template_clone(template=template, owner_id="cloner", handle="nope_clone")
    services.template_update(template=template, visibility="unlisted")
    services.template_moderate(template=template, decision="hide", reason="spam")
    with pytest.raises(TemplateNotFound):
        services.template_clone(template=template, owner_id="cloner", handle="nope_clone")
    # The owner may still clone their own.
    services.template_clone(
        template=template, owner_id="author", handle="own_clone", agent_type="personal"
    )


# --- updates -------------------------------------------------------------------------------


def test_applying_an_update_changes_untouched_fields_and_keeps_the_owners_edits() -> None:
    agent, _ = secret_agent()
    template = publish(agent, visibility="unlisted")
    clone, _ = services.template_clone(template=template, owner_id="cloner", handle="my_clone")
    agent_update(agent=clone, settings={"tone": "formal"})  # the clone's owner edits one field
    agent_update(
        agent=agent,
        description="New description.",
        settings={"tone": "cheerful"},
        onboarding_data={"questions": ["New?"]},
    )
    services.template_publish_version(template=template, changelog="v2")

    clone, changes = services.template_update_apply(agent_id=clone.pk)

    assert {c.field: (c.edited, c.applied) for c in changes} == {
        "description": (False, True),
        "onboarding_data": (False, True),
        "settings": (True, False),
    }
    clone.refresh_from_db()
    assert clone.description == "New description."
    assert clone.onboarding_data == {"questions": ["New?"]}
    assert clone.settings == {"tone": "formal"}
    link = AgentTemplateLink.objects.get(agent=clone)
    assert link.version_number == 2
    with pytest.raises(TemplateUpToDate):
        services.template_update_apply(agent_id=clone.pk)


def test_an_owner_may_overwrite_fields_they_edited() -> None:
    agent, _ = secret_agent()
    template = publish(agent, visibility="unlisted")
    clone, _ = services.template_clone(template=template, owner_id="cloner", handle="my_clone")
    agent_update(agent=clone, settings={"tone": "formal"})
    agent_update(agent=agent, settings={"tone": "cheerful"})
    services.template_publish_version(template=template, changelog="v2")

    clone, _ = services.template_update_apply(agent_id=clone.pk, overwrite=["settings"])

    clone.refresh_from_db()
    assert clone.settings == {"tone": "cheerful"}
    entry = AuditEntry.objects.get(action="agent_template.update_applied")
    assert entry.context["applied"] == ["settings"]


# --- moderation ----------------------------------------------------------------------------


def test_going_public_waits_for_staff_and_each_decision_is_audited() -> None:
    agent, _ = secret_agent()
    template = publish(agent, visibility="public")
    staff = Actor(kind="staff", id="7", name="mod")
    assert template.moderation_status == "pending"

    with pytest.raises(ModerationRefused):
        services.template_moderate(template=template, decision="reject", actor=staff)  # no reason
    services.template_moderate(template=template, decision="reject", reason="vague", actor=staff)
    services.template_update(template=template, description="Clearer now.")  # resubmits
    template.refresh_from_db()
    assert (template.moderation_status, template.moderation_reason) == ("pending", "")
    services.template_moderate(template=template, decision="approve", actor=staff)
    services.template_moderate(template=template, decision="feature", actor=staff)
    services.template_moderate(template=template, decision="hide", reason="abuse", actor=staff)

    template.refresh_from_db()
    assert (template.moderation_status, template.featured) == ("hidden", False)
    trail = list(
        AuditEntry.objects.filter(target_id=str(template.pk), actor_kind="staff")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert trail == [
        "agent_template.rejected", "agent_template.approved", "agent_template.featured",
        "agent_template.hidden",
    ]  # fmt: skip
    # The owner cannot lift a hiding by changing visibility.
    services.template_update(template=template, visibility="unlisted")
    services.template_update(template=template, visibility="public")
    template.refresh_from_db()
    assert template.moderation_status == "hidden"


def test_leaving_the_public_listing_withdraws_it() -> None:
    agent, _ = secret_agent()
    template = publish(agent, visibility="public")
    services.template_moderate(template=template, decision="approve")
    services.template_moderate(template=template, decision="feature")

    services.template_update(template=template, visibility="unlisted")

    template.refresh_from_db()
    assert (template.moderation_status, template.featured) == ("draft", False)


def test_reporting_twice_keeps_one_open_report() -> None:
    agent, _ = secret_agent()
    template = publish(agent, visibility="unlisted")

    first = services.report_create(template=template, reporter_id="u1", reason="spam")
    second = services.report_create(template=template, reporter_id="u1", reason="spam again")
    services.report_close(report=first, status="resolved", note="hidden")

    assert first.pk == second.pk
    third = services.report_create(template=template, reporter_id="u1", reason="back again")
    assert third.pk != first.pk


# --- the catalogue -------------------------------------------------------------------------


def test_seeding_the_catalogue_is_idempotent_and_fills_the_marketplace() -> None:
    from io import StringIO

    from django.core.management import call_command
    from rest_framework.test import APIClient

    from agent_templates.catalogue import CATALOGUE
    from agent_templates.snapshot import SNAPSHOT_KEYS
    from integrations.models import Provider

    first, second = StringIO(), StringIO()
    call_command("seed_templates", stdout=first)
    call_command("seed_templates", stdout=second)

    assert first.getvalue().count(": created") == len(CATALOGUE) >= 3
    assert second.getvalue().count(": unchanged") == len(CATALOGUE)
    assert AgentTemplateVersion.objects.count() == len(CATALOGUE)
    listed = APIClient().get("/api/v1/templates/").json()["results"]
    assert {row["slug"] for row in listed} == {entry["slug"] for entry in CATALOGUE}
    for entry in CATALOGUE:
        assert set(entry["content"]) == set(SNAPSHOT_KEYS)
        assert set(entry["content"]["integrations"]) <= set(Provider.values)
    clone, _ = services.template_clone(
        template=AgentTemplate.objects.get(slug="customer_support"),
        owner_id="newcomer",
        handle="my_desk",
    )
    assert clone.settings == CATALOGUE[0]["content"]["settings"]


def test_a_changed_catalogue_entry_gets_a_new_version_and_an_owners_slug_is_left_alone() -> None:
    agent, _ = secret_agent()
    publish(agent, slug="taken_slug")
    entry: dict[str, Any] = {
        "slug": "seeded_kit", "name": "Seeded", "description": "d", "category": "other",
        "tags": [], "changelog": "v1", "content": {"description": "one", "agent_type": "work"},
    }  # fmt: skip

    assert services.template_seed(owner_id="a1zap_catalogue", **entry) == "created"
    entry["content"] = {"description": "two", "agent_type": "work", "email": "leak@example.com"}
    assert services.template_seed(owner_id="a1zap_catalogue", **entry) == "updated"
    assert (
        services.template_seed(owner_id="a1zap_catalogue", **{**entry, "slug": "taken_slug"})
        == "taken"
    )

    versions = AgentTemplateVersion.objects.filter(template__slug="seeded_kit").order_by("number")
    assert [v.snapshot["description"] for v in versions] == ["one", "two"]
    assert "email" not in versions[1].snapshot


def test_deleting_a_user_deletes_their_templates_and_keeps_others_clones() -> None:
    from accounts.services import stack_user_delete

    agent, _ = secret_agent()
    template = publish(agent, visibility="unlisted")
    clone, _ = services.template_clone(template=template, owner_id="cloner", handle="kept_clone")

    stack_user_delete(user_id="author")

    assert not AgentTemplate.objects.filter(pk=template.pk).exists()
    assert A1Agent.objects.filter(pk=clone.pk).exists()
    assert AuditEntry.objects.filter(action="agent_template.deleted").count() == 1
