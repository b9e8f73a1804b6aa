from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Users"

    def ready(self) -> None:
        from accounts.selectors import stack_user_email
        from notifications.email import owner_email_resolver_set

        # Apps below accounts email an owner at the address the user mirror holds.
        owner_email_resolver_set(stack_user_email)
