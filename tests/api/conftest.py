"""Fixtures for the agent API: a schema-checking client and orders waiting for key work."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.test import Client

from certdesk.accounts.models import User
from certdesk.fulfilment.keywork import agent_pairing_create
from certdesk.orders.models import Order, OrderStatus
from certdesk.tokens.models import UsbKey
from certdesk.tokens.services import usb_key_create, usb_key_mark_issued
from tests.api.schema_check import CheckedApi


@pytest.fixture
def api() -> CheckedApi:
    # CSRF checks on, as for a browser: the API must not need them.
    return CheckedApi(client=Client(enforce_csrf_checks=True))


@pytest.fixture
def paid_order(complete_order: Order) -> Order:
    Order.objects.filter(pk=complete_order.pk).update(status=OrderStatus.PAID, amount_fen=70000)
    complete_order.refresh_from_db()
    return complete_order


@pytest.fixture
def write_code(paid_order: Order, issuer: User, stock_key: UsbKey) -> str:
    return agent_pairing_create(order=paid_order, actor=issuer).code


@pytest.fixture
def unlock_key(db: None) -> UsbKey:
    key = usb_key_create(sn="5500000042", so_pin="SoPin-111111")
    return usb_key_mark_issued(key=key, owner_uscc="91110000600037341L")


@pytest.fixture
def unlock_order(complete_order: Order, unlock_key: UsbKey) -> Order:
    Order.objects.filter(pk=complete_order.pk).update(
        business_type="unlock", status=OrderStatus.READY_TO_UNLOCK, key_sn=unlock_key.sn
    )
    complete_order.refresh_from_db()
    return complete_order


class SoftwareKey:
    """A key pair in memory standing in for a pair on a USB key (the HTTP side cannot tell)."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())

    @property
    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def csr_pem(self, organisation: str = "重庆东方测试有限公司") -> str:
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation)]))
            .sign(self.private, hashes.SHA256())
        )
        return csr.public_bytes(serialization.Encoding.PEM).decode()

    def pop_for(self, other: SoftwareKey, *, order_number: str, key_sn: str) -> str:
        """docs/api.md: the signing key signs context, order, SN and the SHA-256 of the enc SPKI."""
        spki = other.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        message = f"certdesk-enc-pop/v1\n{order_number}\n{key_sn}\n{hashlib.sha256(spki).hexdigest()}".encode()
        return base64.b64encode(self.private.sign(message, ec.ECDSA(hashes.SHA256()))).decode()


@pytest.fixture
def keys() -> Any:
    return SoftwareKey
