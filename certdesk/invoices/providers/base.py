"""Invoicing providers (税控 / 电子发票平台) behind one interface."""

from __future__ import annotations

import datetime
from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class InvoiceRequest:
    reference: str  # our order number: providers deduplicate on it
    invoice_type: str  # normal | special
    buyer_name: str
    buyer_taxpayer_id: str
    buyer_address: str
    buyer_phone: str
    buyer_bank: str
    buyer_account: str
    item_name: str
    amount_fen: int


@dataclass(frozen=True, kw_only=True)
class IssuedInvoice:
    number: str
    issued_at: datetime.datetime
    pdf: bytes


class InvoiceProvider(ABC):
    name: str

    @abstractmethod
    def issue(self, request: InvoiceRequest) -> IssuedInvoice:
        """Issue (or return the already issued) invoice for `request.reference`."""
