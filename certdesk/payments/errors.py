"""Payment errors, each with a stable code (see docs/payments.md)."""

from __future__ import annotations

from certdesk.core.errors import DomainError


class PaymentError(DomainError):
    code = "payment_error"


class GatewayUnavailable(PaymentError):
    """The gateway could not be reached or answered with an error; nothing was decided."""

    code = "gateway_unavailable"


class GatewayDisabled(PaymentError):
    code = "gateway_disabled"


class CallbackRejected(Exception):
    """A callback that must not be acted on. `reason` is a stable code for the log and audit;
    never shown to customers."""

    def __init__(self, reason: str, detail: str = "", *, merchant_no: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.merchant_no = merchant_no
