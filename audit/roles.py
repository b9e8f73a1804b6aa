"""The two staff roles, as Django groups: `support` and `admin`. Superusers are operators.

- `support` views every model (except the ones holding credentials and the staff accounts
  themselves) and may pause and resume agents; nothing else: no add, change or delete.
  What the admin shows never includes a secret: integration settings are masked and app
  key hashes are not displayed to anyone.
- `admin` may do everything the admin offers on the product's models; managing staff
  accounts and groups stays with superusers, so no role can grant itself more.

The groups are created by `audit/migrations/0002_staff_groups.py` and brought up to date
after every `migrate` (a new model's permissions join the roles; nothing is ever removed).
"""

from typing import Any

from django.contrib.auth.management import create_permissions

SUPPORT = "support"
ADMIN = "admin"

# Staff accounts, sessions, the admin's own log and login lockouts: for operators only.
OPERATOR_APPS = ("auth", "contenttypes", "sessions", "admin", "axes")
# dj-stripe models that hold Stripe credentials.
CREDENTIAL_MODELS = (("djstripe", "apikey"), ("djstripe", "webhookendpoint"))
SUPPORT_EXTRA_PERMISSIONS = (("agents", "pause_agent"),)


def _create_all_permissions(apps: Any) -> None:
    """Make sure every model's permissions exist (a data migration runs before Django's
    post_migrate handler creates them)."""
    for app_config in apps.get_app_configs():
        had_models_module = getattr(app_config, "models_module", None)
        # Historical app configs have no models module; create_permissions skips those.
        app_config.models_module = had_models_module or True
        try:
            create_permissions(app_config, verbosity=0, apps=apps)
        finally:
            app_config.models_module = had_models_module


def staff_groups_sync(apps: Any) -> None:
    """Create the `support` and `admin` groups and give them their permissions (add-only)."""
    _create_all_permissions(apps)
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    product = permission_model.objects.exclude(content_type__app_label__in=OPERATOR_APPS)

    admin, _ = group_model.objects.get_or_create(name=ADMIN)
    admin.permissions.add(*product)

    viewing = product.filter(codename__startswith="view_")
    for app_label, model in CREDENTIAL_MODELS:
        viewing = viewing.exclude(content_type__app_label=app_label, content_type__model=model)
    support_permissions = list(viewing)
    for app_label, codename in SUPPORT_EXTRA_PERMISSIONS:
        support_permissions.extend(
            permission_model.objects.filter(content_type__app_label=app_label, codename=codename)
        )
    support, _ = group_model.objects.get_or_create(name=SUPPORT)
    support.permissions.add(*support_permissions)
