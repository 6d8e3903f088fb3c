from django.apps import AppConfig


class MaterialsConfig(AppConfig):
    name = "certdesk.materials"
    label = "materials"
    verbose_name = "证件资料"
