"""dj-stripe without stored API keys.

dj-stripe records which Stripe account owns each object it syncs. It finds that account with
`Account.get_or_retrieve_for_api_key(api_key)` (`djstripe/models/account.py`), which saves the
key it was handed, `STRIPE_SECRET_KEY` for us, in plain text in `djstripe_apikey.secret`
(`APIKey.objects.get_or_create_by_api_key`) to remember the answer. Whoever reads the
database, or a backup of it, would then control our Stripe account.

`install()` (called from `BillingConfig.ready()`) replaces that one method with
`account_for_api_key`: it asks Stripe whose key it is (`GET /v1/account`, as dj-stripe does),
keeps dj-stripe's `Account` row as dj-stripe would, and remembers the account id in process
memory under a SHA-256 digest of the key, so it asks once per process, not per object. It is
the only place dj-stripe creates API keys outside its own admin, which `console.admin.billing`
unregisters; and a CHECK constraint on `djstripe_apikey` (billing migration 0008) refuses any
secret or restricted key, so a path missed here fails loudly rather than storing one.
"""

import hashlib
from typing import Any

from django.db import transaction

# Digest of an API key -> the id of the Stripe account it belongs to.
_account_ids: dict[str, str] = {}


def _digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def account_for_api_key(account_model: Any, api_key: str) -> Any:
    """Return dj-stripe's Account for the key's Stripe account, storing no key.

    A drop-in for `Account.get_or_retrieve_for_api_key` (same arguments, same answer).
    """
    from djstripe.models.api import get_api_key_details_by_prefix
    from djstripe.settings import djstripe_settings

    get_api_key_details_by_prefix(api_key)  # refuses a malformed key, as dj-stripe does
    account_id = _account_ids.get(_digest(api_key))
    if account_id is not None:
        known = account_model.objects.filter(id=account_id).first()
        if known is not None:
            return known
    data = account_model.stripe_class.retrieve(
        api_key=api_key, stripe_version=djstripe_settings.STRIPE_API_VERSION
    )
    _account_ids[_digest(api_key)] = data["id"]
    with transaction.atomic():
        # A stub first: syncing the account looks its owner up again, and finds this row.
        _, created = account_model.objects.get_or_create(id=data["id"])
        if created:
            account_model.sync_from_stripe_data(data, api_key=api_key)
    return account_model.objects.get(id=data["id"])


def install() -> None:
    """Make dj-stripe find accounts through `account_for_api_key`."""
    from djstripe.models import Account

    Account.get_or_retrieve_for_api_key = classmethod(account_for_api_key)
