"""The two staff roles, as Django groups: `support` and `admin`. Superusers are operators.

What each operation takes is `core.staff_permissions`, which the admin and the API both
check; the roles are derived from it:

- `support` views every model (except the ones holding credentials and the staff accounts
  themselves) and may pause and resume agents (`SUPPORT_OPERATIONS`); nothing else: no add,
  change, delete, archive or key rotation, in the admin or through the API. What the admin
  shows never includes a secret: integration settings are masked and app key hashes are
  not displayed to anyone.
- `admin` may do everything the map offers on the product's models; managing staff
  accounts and groups stays with superusers, so no role can grant itself more.

The groups are created by `audit/migrations/0002_staff_groups.py` and brought up to date
after every `migrate` (`0003` re-syncs them): `admin` gains new models' permissions (nothing
is removed from it), and `support` holds exactly its share, so a write permission given to
it by hand is taken away again.
"""

from typing import Any

from django.contrib.auth.management import create_permissions
from django.db.models import Q

from core.staff_permissions import all_staff_permissions, support_permissions

SUPPORT = "support"
ADMIN = "admin"

# Staff accounts, sessions, the admin's own log and login lockouts: for operators only.
OPERATOR_APPS = ("auth", "contenttypes", "sessions", "admin", "axes")
# dj-stripe models that hold Stripe credentials.
CREDENTIAL_MODELS = (("djstripe", "apikey"), ("djstripe", "webhookendpoint"))


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


def _named(permission_model: Any, names: frozenset[str]) -> Any:
    """The permissions named `app_label.codename`."""
    wanted = Q(pk__in=[])
    for name in names:
        app_label, codename = name.split(".", 1)
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    return permission_model.objects.filter(wanted)


def staff_groups_sync(apps: Any) -> None:
    """Create the `support` and `admin` groups and give them their permissions."""
    _create_all_permissions(apps)
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    product = permission_model.objects.exclude(content_type__app_label__in=OPERATOR_APPS)

    admin, _ = group_model.objects.get_or_create(name=ADMIN)
    admin.permissions.add(*product, *_named(permission_model, all_staff_permissions()))

    viewing = product.filter(codename__startswith="view_")
    for app_label, model in CREDENTIAL_MODELS:
        viewing = viewing.exclude(content_type__app_label=app_label, content_type__model=model)
    support, _ = group_model.objects.get_or_create(name=SUPPORT)
    support.permissions.set([*viewing, *_named(permission_model, support_permissions())])
