from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "certdesk.tokens"
    label = "tokens"
    verbose_name = "USB Key 库存"
