"""System checks: a sandbox forced on in production is reported, and an enabled
real gateway must be configured completely. (Production leaves the sandbox out
by itself: conf.enabled_gateways.)"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from certdesk.payments import conf


def gateway_settings_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    enabled = conf.enabled_gateways()
    unknown = [code for code in getattr(settings, "PAYMENT_GATEWAYS", []) if code not in conf.KNOWN_GATEWAYS]
    if unknown:
        messages.append(
            checks.Error(f"PAYMENT_GATEWAYS names unknown gateways: {', '.join(unknown)}", id="payments.E001")
        )
    if "sandbox" in enabled and conf.sandbox_forced_in_production():
        messages.append(
            checks.Warning(
                "The sandbox payment gateway is enabled in production: anyone could mark an order paid.",
                hint="Unset PAYMENT_SANDBOX_IN_PRODUCTION and set PAYMENT_GATEWAYS=wechat,alipay.",
                id="payments.W001",
            )
        )
    if "wechat" in enabled and (missing := conf.wechat_config().missing()):
        messages.append(
            checks.Error(f"WeChat Pay is enabled but not configured: {', '.join(missing)}", id="payments.E003")
        )
    if "alipay" in enabled and (missing := conf.alipay_config().missing()):
        messages.append(checks.Error(f"Alipay is enabled but not configured: {', '.join(missing)}", id="payments.E004"))
    return messages
