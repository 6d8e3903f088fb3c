"""`{{ obj|display:"field" }}` shows what `obj.get_field_display` shows."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.utils import translation

from certdesk.core.choices import BusinessType
from certdesk.core.templatetags.choices import display
from certdesk.invoices.models import Invoice
from certdesk.orders.models import DeliveryMethod, Order, OrderEvent, OrderStatus


@pytest.mark.parametrize("status", [*OrderStatus.values, "not-a-status", ""])
def test_same_as_get_display(status: str) -> None:
    order = Order(status=status, business_type=BusinessType.REDISPATCH, delivery_method=DeliveryMethod.MAIL)
    assert display(order, "status") == order.get_status_display()
    assert display(order, "business_type") == "改派" == order.get_business_type_display()
    assert display(order, "delivery_method") == "邮寄"
    assert display(order, "invoice_type") == "" == order.get_invoice_type_display()


def test_other_models_and_the_template() -> None:
    event = OrderEvent(to_status=OrderStatus.PAID)
    invoice = Invoice(invoice_type="special")
    assert display(invoice, "invoice_type") == invoice.get_invoice_type_display()
    with translation.override("zh-hans"):
        text = Template('{% load choices %}{{ e|display:"to_status" }}·{{ missing|display:"status" }}·').render(
            Context({"e": event})
        )
    assert text == "已付款··"
