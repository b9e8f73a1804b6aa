"""Billing with Stripe: checkout, portal, webhooks and the monthly close."""

from django.apps import AppConfig


class InvoicingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "invoicing"

    def ready(self) -> None:
        from invoicing import djstripe_accounts

        # dj-stripe would store STRIPE_SECRET_KEY in djstripe_apikey: see that module.
        djstripe_accounts.install()
