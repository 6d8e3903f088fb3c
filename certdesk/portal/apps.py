from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "certdesk.portal"
    label = "portal"
    verbose_name = "门户"
