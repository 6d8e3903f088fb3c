from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "certdesk.orders"
    label = "orders"
    verbose_name = "订单"
