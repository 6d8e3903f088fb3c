from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "certdesk.payments"
    label = "payments"
    verbose_name = "支付"

    def ready(self) -> None:
        import datetime

        from django.core import checks

        from certdesk.core.periodic import periodic_register
        from certdesk.orders.services import order_cancelling
        from certdesk.payments import checks as payment_checks
        from certdesk.payments import gateways, receivers, tasks

        order_cancelling.connect(receivers.close_payments_on_cancel, dispatch_uid="payments.close_on_cancel")
        periodic_register(tasks.payments_sync_task, every=datetime.timedelta(minutes=1))
        checks.register(payment_checks.gateway_settings_check, checks.Tags.security)
        gateways.connect_settings_reset()
