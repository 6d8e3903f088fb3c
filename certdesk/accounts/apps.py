from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "certdesk.accounts"
    label = "accounts"
    verbose_name = "账户"
