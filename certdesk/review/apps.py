from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "certdesk.review"
    label = "review"
    verbose_name = "审核"
