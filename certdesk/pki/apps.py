from django.apps import AppConfig


class PkiConfig(AppConfig):
    name = "certdesk.pki"
    label = "pki"
    verbose_name = "CA 引擎"
