from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "certdesk.core"
    label = "core"
    verbose_name = "基础"
