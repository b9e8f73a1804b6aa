"""Hot statements are prepared on their connection: PostgreSQL plans them once, not per run."""

import pytest
from django.db import connection

from agents.models import A1Agent

pytestmark = pytest.mark.django_db


def prepared_statements() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        return int(cursor.fetchone()[0])


def test_a_query_run_a_few_times_on_a_connection_is_prepared() -> None:
    before = prepared_statements()

    for _ in range(6):
        list(A1Agent.objects.filter(owner_id="someone").values("id"))

    assert prepared_statements() > before
