import pytest
from django.test import Client

from certdesk.core.choices import BUSINESS_TYPE_DESCRIPTIONS

pytestmark = pytest.mark.django_db


def test_home_shows_the_seven_tiles_with_descriptions(client: Client) -> None:
    page = client.get("/").content.decode()
    for name in ["证书新办", "证书更新", "证书变更", "证书补办", "在线解锁", "证书注销", "改派"]:
        assert name in page
    for description in BUSINESS_TYPE_DESCRIPTIONS.values():
        assert str(description) in page
    assert "登录" in page and "注册" in page


def test_home_is_served_with_htmx_from_static(client: Client) -> None:
    page = client.get("/").content.decode()
    assert "/static/vendor/htmx/htmx.min.js" in page
    assert "cdn" not in page.lower()


def test_phone_viewport(client: Client) -> None:
    assert 'name="viewport"' in client.get("/").content.decode()
