"""Gateway registry: which gateways are enabled (settings.PAYMENT_GATEWAYS) and
one configured client per gateway, built on first use and rebuilt when
settings change (tests)."""

from __future__ import annotations

import threading
from typing import Any

from django.utils.translation import gettext as _

from certdesk.payments import conf
from certdesk.payments.errors import GatewayDisabled
from certdesk.payments.gateways.base import PaymentGateway

LABELS = {"sandbox": "模拟支付（演示）", "wechat": "微信支付", "alipay": "支付宝"}

_lock = threading.Lock()
_clients: dict[str, PaymentGateway] = {}


def _build(code: str) -> PaymentGateway:
    if code == "sandbox":
        from certdesk.payments.gateways.sandbox import SandboxGateway

        return SandboxGateway(merchant_id=conf.sandbox_merchant_id())
    if code == "wechat":
        from certdesk.payments.gateways.wechat import WeChatGateway

        return WeChatGateway(conf.wechat_config())
    if code == "alipay":
        from certdesk.payments.gateways.alipay import AlipayGateway

        return AlipayGateway(conf.alipay_config())
    raise GatewayDisabled(_("不支持的支付方式。"), code="gateway_unknown")


def gateway_get(code: str) -> PaymentGateway:
    """The client for an enabled gateway; GatewayDisabled otherwise."""
    if code not in conf.enabled_gateways():
        raise GatewayDisabled(_("该支付方式暂未开通，请选择其他支付方式。"))
    with _lock:
        client = _clients.get(code)
        if client is None:
            client = _clients[code] = _build(code)
        return client


def gateway_client(code: str) -> PaymentGateway:
    """The client for a gateway that already holds our payments: callbacks, queries, closes
    and refunds keep working for a gateway taken off the payment page, as long as it is
    configured. The sandbox only ever works while enabled."""
    if code in conf.enabled_gateways():
        return gateway_get(code)
    if code not in conf.KNOWN_GATEWAYS or code == "sandbox":
        raise GatewayDisabled(_("该支付方式未开通。"))
    with _lock:
        client = _clients.get(code)
        if client is None:
            client = _clients[code] = _build(code)
        return client


def gateways_reset(**kwargs: Any) -> None:
    with _lock:
        _clients.clear()


def connect_settings_reset() -> None:
    from django.test.signals import setting_changed

    setting_changed.connect(gateways_reset, dispatch_uid="payments.gateways_reset")
