"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest
from django.test import Client

from certdesk.accounts.models import User


@pytest.fixture
def customer(db: None) -> User:
    return User.objects.create_user(mobile="13800000001", password="Cust0mer-Pass-2026")


@pytest.fixture
def other_customer(db: None) -> User:
    return User.objects.create_user(mobile="13800000002", password="0ther-Cust-Pass-2026")


@pytest.fixture
def customer_client(client: Client, customer: User) -> Client:
    client.force_login(customer)
    return client
