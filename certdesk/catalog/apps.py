from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "certdesk.catalog"
    label = "catalog"
    verbose_name = "项目目录"
