"""The database connection drops in the middle of a request that writes several rows.

The customer submits an order (`orders:submit` → `order_submit`: the order's status UPDATE, an
OrderEvent INSERT, the audit record, the notification rows — one transaction). The connection is
lost after the first writes were sent and before the transaction committed:

- `cursor_raises`: the driver raises OperationalError mid-transaction (SQLite and PostgreSQL);
- `backend_terminated` (PostgreSQL only): the server process serving the request is killed with
  `pg_terminate_backend`, as a failover, a restart or a network cut would.

The customer gets the Chinese 500 page (what happened, what to do; no traceback, no SQL, none of
their data), nothing of the transaction is stored, and the same request succeeds once the database
is back. Protection: `order_submit` and `order_transition` are atomic (`transaction.atomic`), the
templates/500.html page, DEBUG off.

These tests commit for real (`transaction=True`), so the drop hits the request's own transaction,
not a savepoint inside the test's.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.urls import reverse

from certdesk.accounts.models import User
from certdesk.audit.models import AuditRecord
from certdesk.notifications.models import Notification, OutboxMessage
from certdesk.orders.models import Order, OrderEvent, OrderStatus
from tests.dbserver import terminate_own_backend

pytestmark = pytest.mark.django_db(transaction=True)

DROP_AT = 'INSERT INTO "audit_auditrecord"'


def _counts() -> dict[str, int]:
    return {
        "events": OrderEvent.objects.count(),
        "audit": AuditRecord.objects.count(),
        "notifications": Notification.objects.count(),
        "outbox": OutboxMessage.objects.count(),
    }


@pytest.mark.parametrize("how", ["cursor_raises", "backend_terminated"])
def test_connection_lost_mid_transaction_gives_the_error_page_and_stores_nothing(
    how: str, complete_order: Order, customer: User
) -> None:
    if how == "backend_terminated" and connection.vendor != "postgresql":
        pytest.skip("needs a database server to kill (DATABASE_URL=postgres://…)")
    before = _counts()
    sent: list[str] = []
    dropped = False

    def drop(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal dropped
        if not dropped and sql.startswith(DROP_AT):
            dropped = True
            if how == "backend_terminated":
                terminate_own_backend()  # the INSERT below then fails in the driver
            else:
                raise OperationalError("server closed the connection unexpectedly")
        sent.append(sql)
        return execute(sql, params, many, context)

    browser = Client(raise_request_exception=False)
    browser.force_login(customer)
    with connection.execute_wrapper(drop):
        response = browser.post(reverse("orders:submit", args=[complete_order.number]))

    assert dropped
    # It really was mid-transaction: the order's UPDATE and the event's INSERT had been sent.
    assert any(sql.startswith('UPDATE "orders_order"') for sql in sent), sent
    assert any(sql.startswith('INSERT INTO "orders_orderevent"') for sql in sent), sent
    assert response.status_code == 500
    page = response.content.decode()
    assert "抱歉，系统暂时无法完成您的请求" in page and "可能没有完成" in page and "订单查询" in page
    for leak in ("Traceback", "OperationalError", "INSERT", "audit_auditrecord", "psycopg", "sqlite"):
        assert leak not in page, leak
    for data in (complete_order.number, customer.mobile, "重庆东方测试有限公司", "360426"):
        assert data not in page, data

    # Nothing of the transaction was stored: not the status, not the event, not the audit record.
    order = Order.objects.get(pk=complete_order.pk)
    assert (order.status, order.submitted_at) == (OrderStatus.DRAFT, None)
    assert _counts() == before

    # The database is back (Django reconnects): the same request now goes through, once.
    retried = browser.post(reverse("orders:submit", args=[complete_order.number]))
    assert retried.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.SUBMITTED
    assert OrderEvent.objects.filter(order=order, kind="submitted").count() == 1


def test_unknown_pages_get_the_chinese_404_page(customer: User) -> None:
    browser = Client()
    browser.force_login(customer)
    for url in ("/no-such-page/", reverse("orders:detail", args=["XB0000000000000"])):
        response = browser.get(url)
        assert response.status_code == 404
        page = response.content.decode()
        assert "页面不存在" in page and "订单查询" in page
        assert customer.mobile not in page
