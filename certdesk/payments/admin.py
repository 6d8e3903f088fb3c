from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from certdesk.accounts.models import User
from certdesk.core.errors import DomainError
from certdesk.payments.models import Payment, PaymentCallback, Refund
from certdesk.payments.services import payment_refund, payment_surplus_refund


class _ReadOnly(admin.ModelAdmin[Any]):
    """Rows change only through services (and the gateways); the admin shows them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(_ReadOnly):
    list_display = ("merchant_no", "order", "gateway", "amount_fen", "status", "settles_order", "paid_at", "created_at")
    list_filter = ("gateway", "status", "settles_order")
    search_fields = ("merchant_no", "order__number", "gateway_txn_id")
    actions = ["refund_selected"]

    @admin.action(description="退款（已付款订单整单退款；多收的款项单独退）", permissions=["refund"])
    def refund_selected(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        assert isinstance(request.user, User)
        for payment in queryset.select_related("order"):
            try:
                if payment.settles_order:
                    payment_refund(order=payment.order, actor=request.user, reason="工作人员在后台办理退款")
                else:
                    payment_surplus_refund(payment=payment, actor=request.user, reason="多收款项退款")
                self.message_user(request, f"{payment.merchant_no}：已提交退款。", messages.SUCCESS)
            except DomainError as error:
                self.message_user(request, f"{payment.merchant_no}：{error.message}", messages.ERROR)

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.refund_payment")


@admin.register(Refund)
class RefundAdmin(_ReadOnly):
    list_display = ("refund_no", "payment", "amount_fen", "status", "actor", "created_at", "completed_at")
    list_filter = ("status",)
    search_fields = ("refund_no", "payment__merchant_no", "payment__order__number")


@admin.register(PaymentCallback)
class PaymentCallbackAdmin(_ReadOnly):
    list_display = ("received_at", "gateway", "merchant_no", "verified", "outcome", "reason", "remote_addr")
    list_filter = ("gateway", "outcome", "verified")
    search_fields = ("merchant_no",)
