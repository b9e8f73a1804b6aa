from django.db import migrations

# dj-stripe saved STRIPE_SECRET_KEY in plain text in djstripe_apikey.secret on every webhook
# (see invoicing/djstripe_accounts.py). Forget every stored secret or restricted key, and make
# the table refuse them from now on: only publishable keys (public by design) may be kept.
# Rotate a key that was stored: backups taken before this still hold it.
FORGET_AND_REFUSE_SECRET_KEYS = """
DELETE FROM djstripe_apikey WHERE NOT starts_with(secret, 'pk_');
ALTER TABLE djstripe_apikey
    ADD CONSTRAINT djstripe_apikey_publishable_only CHECK (starts_with(secret, 'pk_'));
"""


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0007_subscription_ends_at'),
        ('djstripe', '0003_2_11'),
    ]

    operations = [
        migrations.RunSQL(
            FORGET_AND_REFUSE_SECRET_KEYS,
            reverse_sql="ALTER TABLE djstripe_apikey DROP CONSTRAINT djstripe_apikey_publishable_only",
        ),
    ]
