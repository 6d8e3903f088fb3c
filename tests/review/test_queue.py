"""审核队列 and the review page: bounded pages, the filter kept across them, who holds a claim, a constant
number of queries."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from certdesk.accounts.models import User
from certdesk.orders.models import Order, OrderEvent
from certdesk.review.services import review_claim

pytestmark = pytest.mark.django_db
QUEUE = reverse("review:queue")


@pytest.fixture
def reviewer_client(reviewer: User, staff_client_for: Callable[[User], Client]) -> Client:
    return staff_client_for(reviewer)


def test_queue_pages_keep_the_filter(
    reviewer_client: Client, customer: User, make_orders: Callable[..., list[Order]]
) -> None:
    orders = make_orders(customer, 25, status="submitted")  # due one hour apart: orders[0] first
    first = reviewer_client.get(QUEUE, {"type": "new"}).content.decode()
    assert orders[19].number in first and orders[20].number not in first
    assert "第 1 / 2 页，共 25 条" in first
    assert "?type=new&amp;page=2" in first
    second = reviewer_client.get(QUEUE, {"type": "new", "page": "2"}).content.decode()
    assert orders[20].number in second and orders[19].number not in second
    other_type = reviewer_client.get(QUEUE, {"type": "renew"}).content.decode()
    assert "没有待审核的订单" in other_type


@pytest.mark.parametrize("value", ["x", "0", "999"])
def test_bad_page_number_is_not_an_error(
    reviewer_client: Client, customer: User, make_orders: Callable[..., list[Order]], value: str
) -> None:
    make_orders(customer, 3, status="submitted")
    response = reviewer_client.get(QUEUE, {"page": value})
    assert response.status_code == 200
    assert "LT0001" in response.content.decode()


def test_queue_shows_who_claimed(
    reviewer_client: Client, reviewer: User, customer: User, make_orders: Callable[..., list[Order]]
) -> None:
    claimed, free = make_orders(customer, 2, status="submitted")
    review_claim(order=claimed, reviewer=reviewer)
    page = reviewer_client.get(QUEUE).content.decode()
    row = page[page.index(claimed.number) : page.index("</tr>", page.index(claimed.number))]
    assert reviewer.mobile in row
    free_row = page[page.index(free.number) : page.index("</tr>", page.index(free.number))]
    assert reviewer.mobile not in free_row and "None" not in free_row


def _queries(client: Client, url: str) -> list[str]:
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in captured]


def test_queue_queries_do_not_grow_with_orders(
    reviewer_client: Client,
    reviewer: User,
    second_reviewer: User,
    customer: User,
    make_orders: Callable[..., list[Order]],
) -> None:
    make_orders(customer, 2, status="submitted", prefix="AA")
    few = _queries(reviewer_client, QUEUE)
    many = make_orders(customer, 60, status="submitted", prefix="BB")
    for order in many[:5]:
        review_claim(order=order, reviewer=second_reviewer)
    assert len(_queries(reviewer_client, QUEUE)) == len(few)
    assert len(_queries(reviewer_client, f"{QUEUE}?page=2")) == len(few)
    # session, user, TOTP device, permissions (one query), count, the page of orders
    assert len(few) == 6
    assert sum("auth_permission" in sql for sql in few) == 1


def test_queue_counts_waiting_orders_without_joins(
    reviewer_client: Client, second_reviewer: User, customer: User, make_orders: Callable[..., list[Order]]
) -> None:
    # The paginator's COUNT(*) reads the orders table alone (the claim is a subquery of the shown rows):
    # at 100,000 orders the joined count took 13 ms of a 30 ms page.
    orders = make_orders(customer, 3, status="submitted")
    review_claim(order=orders[0], reviewer=second_reviewer)
    (count,) = [sql for sql in _queries(reviewer_client, QUEUE) if "COUNT(*)" in sql and "orders_order" in sql]
    assert "JOIN" not in count.upper()
    page = reviewer_client.get(QUEUE).content.decode()
    assert page.count(second_reviewer.mobile) == 1 and all(o.number in page for o in orders)


def test_review_page_queries_do_not_grow_with_events(
    reviewer_client: Client, reviewer: User, second_reviewer: User, submitted_order: Order
) -> None:
    url = reverse("review:order", args=[submitted_order.number])
    few = _queries(reviewer_client, url)
    OrderEvent.objects.bulk_create(
        OrderEvent(order=submitted_order, kind="review_claimed", actor=reviewer if i % 2 else second_reviewer)
        for i in range(10)
    )
    assert len(_queries(reviewer_client, url)) == len(few)
    page = reviewer_client.get(url).content.decode()
    assert second_reviewer.mobile in page  # who did each step
