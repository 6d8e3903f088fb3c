from functools import partial
from typing import Any

from django.db import transaction

from certdesk.accounts.models import User
from certdesk.invoices.services import invoice_record
from certdesk.orders.models import Order, OrderEvent, OrderStatus


def on_order_transitioned(sender: Any, *, order: Order, event: OrderEvent, actor: User | None, **_: Any) -> None:
    """Paid: record the invoice now (one row per order, even under duplicate callbacks);
    issue it after commit in the worker, since the provider may be slow."""
    if event.to_status != OrderStatus.PAID or event.kind != "paid":
        return
    invoice = invoice_record(order=order)
    if invoice is not None:
        from certdesk.invoices.tasks import invoice_issue_task

        transaction.on_commit(partial(invoice_issue_task.enqueue, invoice_id=invoice.pk))
