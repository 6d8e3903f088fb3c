from django.apps import AppConfig


class InvoicesConfig(AppConfig):
    name = "certdesk.invoices"
    label = "invoices"
    verbose_name = "发票"

    def ready(self) -> None:
        from certdesk.invoices.receivers import on_order_transitioned
        from certdesk.orders.services import order_transitioned

        order_transitioned.connect(on_order_transitioned, dispatch_uid="invoices.on_paid")

        import datetime

        from certdesk.core.periodic import periodic_register
        from certdesk.invoices.tasks import invoices_retry_task

        periodic_register(invoices_retry_task, every=datetime.timedelta(minutes=10))
