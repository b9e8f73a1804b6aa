from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from billing import djstripe_accounts

        # dj-stripe would store STRIPE_SECRET_KEY in djstripe_apikey: see that module.
        djstripe_accounts.install()
