"""Cascade deletes in the database itself, as the seed's DDL has them."""

from django.db import migrations

from core.schema import CascadeOnDelete


class Migration(migrations.Migration):
    dependencies = [("conversations", "0001_initial")]

    operations = [
        CascadeOnDelete("agent_conversations", "agent_id", "a1_agents"),
        CascadeOnDelete("messages", "agent_id", "a1_agents"),
        CascadeOnDelete("messages", "conversation_id", "agent_conversations"),
    ]
