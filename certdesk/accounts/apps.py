from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "certdesk.accounts"
    label = "accounts"
    verbose_name = "账户"

    def ready(self) -> None:
        from certdesk.accounts.roles import staff_roles_ensure

        # After the orders app's permissions exist.
        post_migrate.connect(staff_roles_ensure, dispatch_uid="certdesk.staff_roles")
