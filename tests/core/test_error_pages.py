"""The 404 and 500 pages: one frame (error_page.html), each saying what happened and what to do next."""

from __future__ import annotations

from django.test import Client, RequestFactory
from django.views.defaults import server_error


def test_a_missing_page_says_so_and_offers_the_way_back(client: Client, db: None) -> None:
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "<title>页面不存在 · 网上证书自助办理平台</title>" in body
    assert "错误代码 404" in body and 'href="/orders/"' in body and "返回首页" in body
    assert "portal/portal.css" in body


def test_a_server_error_page_renders_without_any_context() -> None:
    # Django renders 500.html with no context processors and no database: the frame must not need them.
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    body = response.content.decode()
    assert "<title>系统暂时无法完成您的请求 · 网上证书自助办理平台</title>" in body
    assert "错误代码 500" in body and "以免重复付款" in body and "返回首页" in body
