"""Stripe's secret key never reaches the database: dj-stripe's account lookup stores nothing."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.test import Client

from tests.conftest import STRIPE_KEY
from tests.stripe_fake import StripeFake
from tests.test_billing_stripe import deliver, subscription_event

pytestmark = pytest.mark.django_db


def apikey_rows() -> list[str]:
    """Every row of dj-stripe's key table, as text (all its columns)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT k::text FROM djstripe_apikey k")
        return [row[0] for row in cursor.fetchall()]


def test_a_processed_webhook_leaves_no_api_key_in_the_database(fake: StripeFake) -> None:
    from djstripe.models import Subscription

    event = subscription_event(fake, "created")

    response = deliver(event)

    assert response.json()["outcome"] == "applied"
    synced = Subscription.objects.get(id=event["data"]["object"]["id"])
    assert synced.djstripe_owner_account_id == fake.account_id  # dj-stripe still knows whose
    rows = apikey_rows()
    assert not [row for row in rows if STRIPE_KEY in row]
    assert rows == []


def test_the_account_is_looked_up_once_per_process_not_per_object(fake: StripeFake) -> None:
    deliver(subscription_event(fake, "created", user="user_1"))
    deliver(subscription_event(fake, "created", user="user_2"))

    assert len(fake.requests_to("GET", "/v1/account")) <= 1
    assert apikey_rows() == []


def test_the_database_refuses_to_store_a_secret_or_restricted_key() -> None:
    for key in (STRIPE_KEY, "rk_test_51" + "x" * 24):
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO djstripe_apikey (id, type, name, secret, livemode, created, "
                "stripe_data, djstripe_created, djstripe_updated) "
                "VALUES ('k', 'secret', '', %s, false, now(), '{}', now(), now())",
                [key],
            )


def test_the_admin_offers_no_way_to_store_an_api_key() -> None:
    client = Client()
    client.force_login(User.objects.create_superuser("ops", password="pw"))

    response: Any = client.get("/admin/djstripe/apikey/add/")

    assert response.status_code == 404
