"""Create the two staff roles, `support` and `admin`, as Django groups (see audit.roles)."""

from django.db import migrations


def create_staff_groups(apps, schema_editor):
    from audit.roles import staff_groups_sync

    staff_groups_sync(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("accounts", "0001_initial"),
        ("agents", "0004_staff_permissions"),
        ("billing", "0005_billing_state_and_idempotency"),
        ("conversations", "0003_channels_threads_and_client_message_ids"),
        ("integrations", "0003_provider_and_status_checks"),
        ("usage", "0004_quota_exceeded_function"),
        ("djstripe", "0003_2_11"),
    ]

    # Reversing keeps the groups: staff may already belong to them.
    operations = [migrations.RunPython(create_staff_groups, migrations.RunPython.noop)]
