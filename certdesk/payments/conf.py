"""Payment settings, read when used (tests override them) with the embedded defaults.

Credentials come only from the environment through `config/settings.py`; none
live in the repository. PEM values may be the PEM text itself (a literal `\\n`
is accepted for one-line environment variables) or the path of a PEM file.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.urls import reverse

KNOWN_GATEWAYS = ("sandbox", "wechat", "alipay")


def _get(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def sandbox_forced_in_production() -> bool:
    return bool(_get("PRODUCTION", False)) and bool(_get("PAYMENT_SANDBOX_IN_PRODUCTION", False))


def enabled_gateways() -> list[str]:
    """Gateways offered to customers, in the order the settings list them. The sandbox lets
    anyone "pay", so production leaves it out unless PAYMENT_SANDBOX_IN_PRODUCTION says otherwise."""
    codes = [code for code in _get("PAYMENT_GATEWAYS", ["sandbox"]) if code in KNOWN_GATEWAYS]
    if _get("PRODUCTION", False) and not sandbox_forced_in_production():
        codes = [code for code in codes if code != "sandbox"]
    return codes


def transaction_ttl() -> datetime.timedelta:
    """How long one QR code (one merchant order number) may be paid."""
    return datetime.timedelta(minutes=int(_get("PAYMENT_TRANSACTION_TTL_MINUTES", 120)))


def callback_max_age() -> datetime.timedelta:
    """Signed callbacks older (or newer) than this are refused as replays."""
    return datetime.timedelta(seconds=int(_get("PAYMENT_CALLBACK_MAX_AGE_SECONDS", 300)))


def site_url() -> str:
    return str(_get("SITE_URL", "http://127.0.0.1:8000")).rstrip("/")


def callback_url(gateway: str) -> str:
    return site_url() + reverse("payments:callback", kwargs={"gateway": gateway})


def sandbox_merchant_id() -> str:
    return str(_get("PAYMENT_SANDBOX_MERCHANT_ID", "certdesk-sandbox"))


def pem(value: str) -> str:
    """PEM text from a setting that holds either the text or a file path."""
    value = (value or "").strip()
    if not value:
        return ""
    if "-----BEGIN" in value:
        return value.replace("\\n", "\n")
    path = Path(value)
    return path.read_text(encoding="ascii") if path.is_file() else ""


@dataclass(frozen=True, kw_only=True)
class WeChatConfig:
    mchid: str
    appid: str
    apiv3_key: str
    private_key: str  # merchant API key (PKCS#8 PEM)
    cert_serial_no: str  # serial of the merchant API certificate
    public_key: str  # 微信支付公钥 (SPKI PEM); empty when platform certificates are used
    public_key_id: str  # PUB_KEY_ID_…, sent as Wechatpay-Serial
    cert_dir: str  # where platform certificates are kept (downloaded when missing)
    base_url: str
    notify_url: str
    timeout: float

    def missing(self) -> list[str]:
        required = {
            "WECHATPAY_MCHID": self.mchid,
            "WECHATPAY_APPID": self.appid,
            "WECHATPAY_APIV3_KEY": self.apiv3_key,
            "WECHATPAY_PRIVATE_KEY": self.private_key,
            "WECHATPAY_CERT_SERIAL_NO": self.cert_serial_no,
        }
        missing = [name for name, value in required.items() if not value]
        if not (self.public_key and self.public_key_id) and not self.cert_dir:
            missing.append("WECHATPAY_PUBLIC_KEY + WECHATPAY_PUBLIC_KEY_ID or WECHATPAY_CERT_DIR")
        if self.apiv3_key and len(self.apiv3_key.encode()) != 32:
            missing.append("WECHATPAY_APIV3_KEY (32 bytes)")
        return missing


def wechat_config() -> WeChatConfig:
    return WeChatConfig(
        mchid=str(_get("WECHATPAY_MCHID", "")),
        appid=str(_get("WECHATPAY_APPID", "") or _get("WECHAT_APP_ID", "")),
        apiv3_key=str(_get("WECHATPAY_APIV3_KEY", "")),
        private_key=pem(str(_get("WECHATPAY_PRIVATE_KEY", ""))),
        cert_serial_no=str(_get("WECHATPAY_CERT_SERIAL_NO", "")),
        public_key=pem(str(_get("WECHATPAY_PUBLIC_KEY", ""))),
        public_key_id=str(_get("WECHATPAY_PUBLIC_KEY_ID", "")),
        cert_dir=str(_get("WECHATPAY_CERT_DIR", "")),
        base_url=str(_get("WECHATPAY_BASE_URL", "https://api.mch.weixin.qq.com")).rstrip("/"),
        notify_url=str(_get("WECHATPAY_NOTIFY_URL", "")) or callback_url("wechat"),
        timeout=float(_get("WECHATPAY_TIMEOUT", 10)),
    )


@dataclass(frozen=True, kw_only=True)
class AlipayConfig:
    app_id: str
    app_private_key: str  # the application's RSA2 private key (PEM)
    alipay_public_key: str  # Alipay's public key for this application (PEM)
    seller_id: str  # the merchant's PID (2088…), checked on every notification
    gateway_url: str
    notify_url: str
    timeout: int

    def missing(self) -> list[str]:
        required = {
            "ALIPAY_APP_ID": self.app_id,
            "ALIPAY_APP_PRIVATE_KEY": self.app_private_key,
            "ALIPAY_PUBLIC_KEY": self.alipay_public_key,
            "ALIPAY_SELLER_ID": self.seller_id,
        }
        return [name for name, value in required.items() if not value]


def alipay_config() -> AlipayConfig:
    return AlipayConfig(
        app_id=str(_get("ALIPAY_APP_ID", "")),
        app_private_key=pem(str(_get("ALIPAY_APP_PRIVATE_KEY", ""))),
        alipay_public_key=pem(str(_get("ALIPAY_PUBLIC_KEY", ""))),
        seller_id=str(_get("ALIPAY_SELLER_ID", "")),
        gateway_url=str(_get("ALIPAY_GATEWAY_URL", "https://openapi.alipay.com/gateway.do")),
        notify_url=str(_get("ALIPAY_NOTIFY_URL", "")) or callback_url("alipay"),
        timeout=int(_get("ALIPAY_TIMEOUT", 10)),
    )
