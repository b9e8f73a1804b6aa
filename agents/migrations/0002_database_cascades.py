"""Cascade deletes in the database itself, as the seed's DDL has them."""

from django.db import migrations

from core.schema import CascadeOnDelete


class Migration(migrations.Migration):
    dependencies = [("agents", "0001_initial")]

    operations = [
        CascadeOnDelete("a1_agents", "app_id", "apps"),
        CascadeOnDelete("apps", "agent_id", "a1_agents"),
    ]
