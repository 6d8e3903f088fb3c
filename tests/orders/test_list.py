"""订单查询: the customer's own orders, newest first, 20 to a page, in a constant number of queries."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from certdesk.accounts.models import User
from certdesk.orders.models import Order, OrderEvent
from certdesk.orders.views import ORDERS_PER_PAGE

pytestmark = pytest.mark.django_db
LIST = reverse("orders:list")


def _numbers(page: str, orders: list[Order]) -> list[str]:
    return [o.number for o in orders if f">{o.number}<" in page]


def test_list_is_paginated_newest_first(
    customer_client: Client, customer: User, make_orders: Callable[..., list[Order]]
) -> None:
    orders = make_orders(customer, ORDERS_PER_PAGE + 5)  # orders[0] is the newest
    first = customer_client.get(LIST).content.decode()
    assert _numbers(first, orders) == [o.number for o in orders[:ORDERS_PER_PAGE]]
    assert first.index(orders[0].number) < first.index(orders[1].number)
    assert "第 1 / 2 页，共 25 条" in first
    assert "?page=2" in first and "下一页" in first
    second = customer_client.get(LIST, {"page": 2}).content.decode()
    assert _numbers(second, orders) == [o.number for o in orders[ORDERS_PER_PAGE:]]
    assert "第 2 / 2 页" in second and "上一页" in second and "下一页" not in second


@pytest.mark.parametrize(("value", "shown"), [("abc", 1), ("", 1), ("1.5", 1), ("0", 2), ("-3", 2), ("99", 2)])
def test_bad_page_number_shows_first_or_last_page(
    customer_client: Client, customer: User, make_orders: Callable[..., list[Order]], value: str, shown: int
) -> None:
    orders = make_orders(customer, ORDERS_PER_PAGE + 1)
    response = customer_client.get(LIST, {"page": value})
    assert response.status_code == 200
    page = response.content.decode()
    assert f"第 {shown} / 2 页" in page
    assert (orders[0].number in page) is (shown == 1)
    assert (orders[-1].number in page) is (shown == 2)


def test_one_page_has_no_pager_and_no_orders_says_so(
    customer_client: Client, customer: User, make_orders: Callable[..., list[Order]]
) -> None:
    assert "您还没有订单" in customer_client.get(LIST, {"page": "7"}).content.decode()
    make_orders(customer, 3)
    page = customer_client.get(LIST).content.decode()
    assert "LT0001" in page and "页，共" not in page


def test_list_shows_labels_and_the_next_step(
    customer_client: Client, customer: User, make_orders: Callable[..., list[Order]]
) -> None:
    draft = make_orders(customer, 1, prefix="DR")[0]
    paying = make_orders(customer, 1, status="awaiting_payment", prefix="AP")[0]
    page = customer_client.get(LIST).content.decode()
    assert "证书新办" in page and "草稿" in page and "待付款" in page
    assert reverse("orders:info", args=[draft.number]) in page
    assert reverse("payments:pay", args=[paying.number]) in page
    assert reverse("orders:detail", args=[paying.number]) in page


def test_list_shows_only_own_orders(
    customer_client: Client, customer: User, other_customer: User, make_orders: Callable[..., list[Order]]
) -> None:
    make_orders(customer, 2, prefix="MY")
    make_orders(other_customer, 2, prefix="OT")
    page = customer_client.get(LIST).content.decode()
    assert "MY0001" in page and "OT0001" not in page and "OT0002" not in page


def _queries(client: Client, url: str) -> int:
    client.get(url)  # warm: first-request work (e.g. content types) is not what is measured
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_list_queries_do_not_grow_with_orders(
    customer_client: Client, customer: User, make_orders: Callable[..., list[Order]]
) -> None:
    make_orders(customer, 2, prefix="AA", status="submitted")
    few = _queries(customer_client, LIST)
    statuses = ("draft", "rejected", "awaiting_payment", "ready_to_download", "ready_to_unlock", "completed")
    for i, status in enumerate(statuses):  # every kind of row: each links to another next step
        make_orders(customer, 10, prefix=f"Q{i}", status=status)
    assert _queries(customer_client, LIST) == few
    assert _queries(customer_client, f"{LIST}?page=3") == few
    # session, user, unread messages, count, the page of orders
    assert few == 5


def test_detail_queries_do_not_grow_with_orders_or_events(
    customer_client: Client, customer: User, reviewer: User, make_orders: Callable[..., list[Order]]
) -> None:
    order = make_orders(customer, 1, prefix="DE", status="submitted")[0]
    url = reverse("orders:detail", args=[order.number])
    few = _queries(customer_client, url)
    make_orders(customer, 40, prefix="MO", status="completed")
    OrderEvent.objects.bulk_create(
        OrderEvent(order=order, kind="review_claimed", actor=reviewer if i % 2 else customer) for i in range(10)
    )
    assert _queries(customer_client, url) == few
    assert "审核员领取" in customer_client.get(url).content.decode()


def test_redispatch_offers_orders_on_their_way(
    customer_client: Client, customer: User, make_orders: Callable[..., list[Order]]
) -> None:
    url = reverse("orders:start", args=["redispatch"])
    Order.objects.filter(pk=make_orders(customer, 1, status="shipped", prefix="SH")[0].pk).update(
        delivery_method="mail", shipping_address="重庆市渝中区测试路9号"
    )
    make_orders(customer, 1, status="draft", prefix="NO")
    few = _queries(customer_client, url)
    page = customer_client.get(url).content.decode()
    assert "SH0001 · 证书新办 · 已发货 · 邮寄 重庆市渝中区测试路9号" in page
    assert "NO0001" not in page
    make_orders(customer, 10, status="awaiting_pickup", prefix="PK")
    assert _queries(customer_client, url) == few
