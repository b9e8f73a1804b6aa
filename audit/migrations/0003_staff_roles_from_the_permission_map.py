"""Bring the staff roles in line with core.staff_permissions: `support` holds exactly its
share (view, pause, resume), so no write permission stays with it (see audit.roles)."""

from django.db import migrations


def sync_staff_groups(apps, schema_editor):
    from audit.roles import staff_groups_sync

    staff_groups_sync(apps)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_staff_groups")]

    # Reversing keeps the groups as they are: nothing to undo that would be safer.
    operations = [migrations.RunPython(sync_staff_groups, migrations.RunPython.noop)]
