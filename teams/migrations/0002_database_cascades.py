"""Cascade deletes in the database itself, like the other apps' foreign keys."""

from django.db import migrations

from core.schema import CascadeOnDelete


class Migration(migrations.Migration):
    dependencies = [("teams", "0001_initial")]

    operations = [
        CascadeOnDelete("team_memberships", "team_id", "teams"),
        CascadeOnDelete("team_member_permissions", "team_id", "teams"),
    ]
