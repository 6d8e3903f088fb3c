"""A second account gets 404 for every page, PDF and file of the first account's order."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from certdesk.accounts.models import User
from certdesk.orders.models import Order

pytestmark = pytest.mark.django_db


def _order_urls(order: Order) -> list[tuple[str, str]]:
    n = order.number
    urls = [
        ("get", reverse("orders:detail", args=[n])),
        ("get", reverse("orders:info", args=[n])),
        ("post", reverse("orders:info", args=[n])),
        ("get", reverse("orders:print", args=[n])),
        ("post", reverse("orders:print", args=[n])),
        ("get", reverse("orders:form_pdf", args=[n])),
        ("get", reverse("orders:upload", args=[n])),
        ("get", reverse("orders:submit", args=[n])),
        ("post", reverse("orders:submit", args=[n])),
        ("post", reverse("orders:cancel", args=[n])),
    ]
    for kind in ["application_form", "agent_id"]:
        urls += [
            ("post", reverse("materials:upload", args=[n, kind])),
            ("get", reverse("materials:slot", args=[n, kind])),
            ("get", reverse("materials:file", args=[n, kind])),
            ("get", reverse("materials:phone_qr", args=[n, kind])),
        ]
    return urls


def test_second_account_gets_404_everywhere(client: Client, complete_order: Order, other_customer: User) -> None:
    client.force_login(other_customer)  # replaces the owner's session on this client
    for method, url in _order_urls(complete_order):
        response = getattr(client, method)(url)
        assert response.status_code == 404, (method, url, response.status_code)
    complete_order.refresh_from_db()
    assert complete_order.status == "draft"
    assert complete_order.number not in client.get(reverse("orders:list")).content.decode()


def test_owner_sees_them(customer_client: Client, complete_order: Order) -> None:
    for method, url in _order_urls(complete_order):
        if method == "get":
            assert customer_client.get(url).status_code == 200, url


def test_anonymous_is_sent_to_login(client: Client, complete_order: Order) -> None:
    client.logout()  # the fixture that filled the order logged this client in
    for method, url in _order_urls(complete_order):
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert reverse("accounts:login") in response["Location"]


def test_unknown_material_slot_is_404(customer_client: Client, complete_order: Order) -> None:
    url = reverse("materials:file", args=[complete_order.number, "situation_statement"])
    assert customer_client.get(url).status_code == 404
