import datetime

from django.apps import AppConfig


class FulfilmentConfig(AppConfig):
    name = "certdesk.fulfilment"
    label = "fulfilment"
    verbose_name = "制证与发货"

    def ready(self) -> None:
        from certdesk.core.periodic import periodic_register
        from certdesk.fulfilment.tasks import shipments_auto_complete_task

        periodic_register(shipments_auto_complete_task, every=datetime.timedelta(hours=1))

        from certdesk.fulfilment.routing import on_order_transitioned
        from certdesk.orders.services import order_transitioned

        order_transitioned.connect(on_order_transitioned, dispatch_uid="fulfilment.routing")
