from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "certdesk.api"
    label = "api"
    verbose_name = "证书助手接口"
