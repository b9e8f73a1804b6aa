"""Cascade deletes in the database itself, as the seed's DDL has them."""

from django.db import migrations

from core.schema import CascadeOnDelete


class Migration(migrations.Migration):
    dependencies = [("usage", "0001_initial")]

    operations = [
        CascadeOnDelete("agent_usage", "agent_id", "a1_agents"),
    ]
