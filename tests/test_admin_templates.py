"""Moderation in the support console: the queue, decisions through the services (audited
with the staff member), reports; and no secret of the source agent on any page."""

from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from agent_templates import services
from agent_templates.models import AgentTemplate, TemplateReport
from audit.models import AuditEntry
from tests.test_templates import secret_agent

pytestmark = pytest.mark.django_db

TEMPLATES = "/admin/agent_templates/agenttemplate/"
QUEUE = "/admin/agent_templates/templatemoderationqueue/"
REPORTS = "/admin/agent_templates/templatereport/"


def staff_client(role: str) -> tuple[Client, User]:
    user = User.objects.create_user(role, password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client, user


def submitted(slug: str = "support_kit", **fields: Any) -> AgentTemplate:
    agent, _ = secret_agent(owner_id=f"author_{slug}", handle=f"src_{slug}"[:30])
    return services.template_create(
        owner_id=agent.owner_id, agent_id=agent.pk, slug=slug, name="Kit", visibility="public",
        **fields,
    )  # fmt: skip


def moderate(client: Client, template: AgentTemplate, decision: str, reason: str = "") -> Any:
    return client.post(
        f"{TEMPLATES}{template.pk}/moderate/", {"decision": decision, "reason": reason}
    )


def test_the_queue_lists_only_public_templates_waiting_for_a_decision() -> None:
    waiting = submitted("waiting_kit")
    approved = submitted("approved_kit")
    services.template_moderate(template=approved, decision="approve")
    client, _ = staff_client("admin")

    page = client.get(QUEUE).content.decode()

    assert waiting.slug in page
    assert approved.slug not in page


def test_an_admin_approves_features_rejects_and_hides_each_decision_in_the_audit_trail() -> None:
    template = submitted()
    client, user = staff_client("admin")

    assert moderate(client, template, "approve").status_code == 302
    moderate(client, template, "feature")
    template.refresh_from_db()
    assert (template.moderation_status, template.featured) == ("approved", True)
    moderate(client, template, "reject")  # no reason: refused, nothing changes
    template.refresh_from_db()
    assert template.moderation_status == "approved"
    moderate(client, template, "reject", "Misleading description")
    template.refresh_from_db()
    assert (template.moderation_status, template.moderation_reason, template.featured) == (
        "rejected", "Misleading description", False,
    )  # fmt: skip
    moderate(client, template, "hide", "Reported abuse")

    entries = AuditEntry.objects.filter(target_id=str(template.pk), actor_kind="staff")
    assert list(entries.order_by("id").values_list("action", "actor_name")) == [
        ("agent_template.approved", user.username),
        ("agent_template.featured", user.username),
        ("agent_template.rejected", user.username),
        ("agent_template.hidden", user.username),
    ]
    assert entries.get(action="agent_template.rejected").context == {
        "reason": "Misleading description"
    }


def test_bulk_approval_goes_through_the_service() -> None:
    first, second = submitted("first_kit"), submitted("second_kit")
    client, _ = staff_client("admin")

    client.post(QUEUE, {"action": "approve_selected", "_selected_action": [first.pk, second.pk]})

    assert set(AgentTemplate.objects.values_list("moderation_status", flat=True)) == {"approved"}
    assert AuditEntry.objects.filter(action="agent_template.approved").count() == 2


def test_support_sees_the_queue_but_cannot_decide() -> None:
    template = submitted()
    client, _ = staff_client("support")

    assert client.get(QUEUE).status_code == 200
    page = client.get(f"{TEMPLATES}{template.pk}/change/").content.decode()
    assert "moderate-approve" not in page
    assert moderate(client, template, "approve").status_code == 403
    template.refresh_from_db()
    assert template.moderation_status == "pending"


def test_reports_are_listed_and_closed_through_the_service() -> None:
    template = submitted()
    report = services.report_create(template=template, reporter_id="u9", reason="It is spam")
    client, _ = staff_client("admin")

    assert "It is spam" in client.get(REPORTS).content.decode()
    client.post(REPORTS, {"action": "dismiss_selected", "_selected_action": [report.pk]})

    report.refresh_from_db()
    assert report.status == "dismissed"
    assert AuditEntry.objects.filter(action="template_report.dismissed").exists()
    assert TemplateReport.objects.count() == 1


def test_no_secret_of_the_source_agent_is_on_any_template_page() -> None:
    agent, leaks = secret_agent(handle="leaky_agent")
    template = services.template_create(
        owner_id=agent.owner_id, agent_id=agent.pk, slug="leak_kit", name="Kit",
        visibility="public",
    )  # fmt: skip
    services.report_create(template=template, reporter_id="u1", reason="check")
    client, _ = staff_client("admin")

    pages = [
        client.get(TEMPLATES),
        client.get(f"{TEMPLATES}{template.pk}/change/"),
        client.get(QUEUE),
        client.get(f"{QUEUE}{template.pk}/change/"),
        client.get(REPORTS),
    ]

    assert [page.status_code for page in pages] == [200] * 5
    text = " ".join(page.content.decode() for page in pages)
    assert "leak_kit" in text
    assert [leak for leak in leaks if leak in text] == []
