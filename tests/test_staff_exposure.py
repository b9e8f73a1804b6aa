"""What staff work leaves behind where it should not: a staff member's name in what the
customer reads."""

from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from rest_framework.test import APIClient

from audit.models import AuditEntry
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


def admin_session(username: str = "ann_admin") -> Client:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="admin"))
    client = Client()
    client.force_login(user)
    return client


# --- a staff member's name stays out of what the owner reads --------------------------------


def test_a_plan_change_in_the_admin_does_not_name_the_staff_member_to_the_owner(
    owner_headers: Any,
) -> None:
    subscription = SubscriptionFactory.create(user_id="user_1", plan_id="free")
    client = admin_session("ann_admin")

    changed = client.post(
        f"/admin/billing/usersubscription/{subscription.pk}/change/",
        {"plan_id": "pro", "max_personal_agents": "", "max_work_agents": "9",
         "max_total_agents": ""},
    )  # fmt: skip

    events = APIClient().get("/api/v1/billing/events/", **owner_headers("user_1")).json()

    assert changed.status_code == 302
    descriptions = [event["description"] for event in events["results"]]
    assert "Plan changed from free to pro." in descriptions
    assert "Agent limits changed." in descriptions
    for description in descriptions:
        assert "ann_admin" not in description
        assert "staff" not in description
    # Who did it is in the audit trail, for staff.
    actors = set(
        AuditEntry.objects.filter(
            owner_id="user_1", action__startswith="subscription."
        ).values_list("actor_kind", "actor_name")
    )
    assert actors == {("staff", "ann_admin")}
