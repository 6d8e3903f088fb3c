"""Payment fixtures: keys made here with `cryptography`, local fake gateways,
and an order awaiting payment."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from certdesk.accounts.models import User
from certdesk.orders.models import Order, OrderStatus
from certdesk.payments.gateways import gateways_reset
from tests.payments.fakes import FakeAlipay, FakeWeChatPay, private_pem, public_pem

MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
ALIPAY_APP_ID = "2021000117600000"
SELLER_ID = "2088102177846875"


@dataclass(frozen=True)
class Keys:
    merchant: rsa.RSAPrivateKey  # WeChat Pay merchant API key (ours)
    platform: rsa.RSAPrivateKey  # WeChat Pay platform key (theirs)
    alipay_app: rsa.RSAPrivateKey  # Alipay application key (ours)
    alipay: rsa.RSAPrivateKey  # Alipay's key (theirs)
    stranger: rsa.RSAPrivateKey  # someone else's


@pytest.fixture(scope="session")
def keys() -> Keys:
    def make() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    return Keys(make(), make(), make(), make(), make())


@pytest.fixture(autouse=True)
def _fresh_gateways() -> Iterator[None]:
    gateways_reset()
    yield
    gateways_reset()


@pytest.fixture
def awaiting_order(submitted_order: Order, reviewer: User) -> Order:
    """A 证书新办 order approved at the catalogue price: 2 years × 300.00 + key 100.00 = 700.00."""
    from certdesk.review.services import review_approve

    order = review_approve(order=submitted_order, reviewer=reviewer)
    assert order.status == OrderStatus.AWAITING_PAYMENT
    assert order.amount_fen == 70000
    return order


@pytest.fixture
def wechat(keys: Keys, settings: Settings) -> Iterator[FakeWeChatPay]:
    apiv3_key = secrets.token_hex(16)  # 32 characters
    fake = FakeWeChatPay(
        mchid=MCHID,
        appid=APPID,
        apiv3_key=apiv3_key,
        merchant_key=keys.merchant,
        platform_key=keys.platform,
        platform_serial="PUB_KEY_ID_0114232019092300000000000000000000",
    )
    base_url = fake.start()
    settings.PAYMENT_GATEWAYS = ["wechat", "alipay", "sandbox"]
    settings.WECHATPAY_MCHID = MCHID
    settings.WECHATPAY_APPID = APPID
    settings.WECHATPAY_APIV3_KEY = apiv3_key
    settings.WECHATPAY_PRIVATE_KEY = private_pem(keys.merchant)
    settings.WECHATPAY_CERT_SERIAL_NO = "444F4864EA9B34415"
    settings.WECHATPAY_PUBLIC_KEY = public_pem(keys.platform)
    settings.WECHATPAY_PUBLIC_KEY_ID = fake.platform_serial
    settings.WECHATPAY_BASE_URL = base_url
    yield fake
    fake.stop()


@pytest.fixture
def alipay(keys: Keys, settings: Settings) -> Iterator[FakeAlipay]:
    fake = FakeAlipay(app_id=ALIPAY_APP_ID, seller_id=SELLER_ID, app_key=keys.alipay_app, alipay_key=keys.alipay)
    gateway_url = fake.start()
    settings.PAYMENT_GATEWAYS = ["wechat", "alipay", "sandbox"]
    settings.ALIPAY_APP_ID = ALIPAY_APP_ID
    settings.ALIPAY_APP_PRIVATE_KEY = private_pem(keys.alipay_app)
    settings.ALIPAY_PUBLIC_KEY = public_pem(keys.alipay)
    settings.ALIPAY_SELLER_ID = SELLER_ID
    settings.ALIPAY_GATEWAY_URL = gateway_url
    yield fake
    fake.stop()


def post_callback(client: Client, gateway: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    content_type = "application/x-www-form-urlencoded" if gateway == "alipay" else "application/json"
    url = reverse("payments:callback", kwargs={"gateway": gateway})
    response = client.post(url, data=body, content_type=content_type, headers=headers or {})
    return response.status_code
