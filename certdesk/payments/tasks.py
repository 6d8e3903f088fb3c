"""Background payment work on the tasks API."""

from __future__ import annotations

from django_tasks import task

from certdesk.payments import services


@task()
def payments_sync_task() -> dict[str, int]:
    """Every minute (periodic_register in apps.py): query open payments that got no
    callback, close expired ones, follow refunds in progress."""
    return services.payments_sync()


@task()
def payments_close_others_task(*, order_id: int) -> int:
    """After an order is paid: close its other open QR codes at their gateways."""
    return services.payments_close_others(order_id=order_id)
