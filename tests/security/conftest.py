"""Fixtures for the security suite. Those owned by another suite are imported from it, not copied."""

from tests.api.conftest import paid_order, unlock_key, unlock_order, write_code
from tests.payments.conftest import _fresh_gateways, alipay, awaiting_order, keys, wechat
from tests.security.test_authz_matrix import objects, visitors

__all__ = [
    "_fresh_gateways",
    "alipay",
    "awaiting_order",
    "keys",
    "objects",
    "paid_order",
    "unlock_key",
    "unlock_order",
    "visitors",
    "wechat",
    "write_code",
]
