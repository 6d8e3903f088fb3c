"""Whatever arrives, the agent API answers as documented and never with a 500 (a small stand-in
for a schema-driven fuzzer such as schemathesis)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certdesk.tokens.models import UsbKey
from tests.api.schema_check import CheckedApi

pytestmark = pytest.mark.django_db

FIELDS = ["pairing_code", "key_sn", "role", "csr_pem", "public_key_pem", "pop_signature", "serials", "ok", "error"]
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
bodies = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), values, max_size=5)
raw_bodies = st.binary(max_size=200) | st.just(b"[" * 5000 + b"]" * 5000)
ROUTES = ["sessions", "certificates", "confirm", "unlock/start", "unlock/finish"]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def token(file_ca: Any, api: CheckedApi, stock_key: UsbKey, write_code: str) -> str:
    answer = api.post("sessions", {"pairing_code": write_code, "key_sn": stock_key.sn})
    assert answer.status == 201
    return str(answer.body["token"])


@SETTINGS
@given(route=st.sampled_from(ROUTES), body=bodies)
def test_any_json_object(api: CheckedApi, token: str, route: str, body: dict[str, Any]) -> None:
    answer = api.post(route, body, token=token)
    assert answer.status < 500, answer.body


@SETTINGS
@given(route=st.sampled_from(ROUTES), raw=raw_bodies)
def test_any_bytes(api: CheckedApi, token: str, route: str, raw: bytes) -> None:
    answer = api.post(route, raw=raw, token=token)
    assert answer.status < 500, answer.body


@SETTINGS
@given(body=bodies, authorization=st.text(max_size=60))
def test_any_session_opening_and_token(api: CheckedApi, body: dict[str, Any], authorization: str) -> None:
    assert api.post("sessions", body).status < 500
    try:
        json.dumps(authorization).encode("latin-1")
    except UnicodeEncodeError:
        return  # not something a header can carry
    assert api.get("session", token=authorization).status in (400, 401)
