from django.apps import AppConfig


class RaConfig(AppConfig):
    name = "certdesk.ra"
    label = "ra"
    verbose_name = "RA → CA"
