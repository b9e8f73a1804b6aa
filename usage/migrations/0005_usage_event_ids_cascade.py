"""Remembered event ids go with their agent, in the database like every agent-owned table."""

from django.db import migrations

from core.schema import CascadeOnDelete


class Migration(migrations.Migration):
    dependencies = [("usage", "0004_quota_exceeded_function")]

    operations = [CascadeOnDelete("usage_event_ids", "agent_id", "a1_agents")]
