from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Users"

    def ready(self) -> None:
        from accounts.selectors import account_emails
        from notifications.email import owner_email_resolver_set

        # Apps below accounts email an owner (a team: its admins) at the addresses the user
        # mirror holds.
        owner_email_resolver_set(account_emails)
