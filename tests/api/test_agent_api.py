"""The agent's JSON API over HTTP (Django test client): every route, its refusals, the schema.

The agent itself, with real SoftHSM keys against a live server, is tested in
tests/agent/test_flows*.py."""

from __future__ import annotations

import datetime
import logging
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.test import Client
from django.urls import URLPattern, get_resolver
from django.utils import timezone
from openapi_spec_validator import validate as openapi_validate

from certdesk.accounts.models import User
from certdesk.api.openapi import PREFIX, openapi_document
from certdesk.fulfilment.keywork import agent_pairing_create
from certdesk.fulfilment.models import AgentSession
from certdesk.orders.models import Order, OrderStatus
from certdesk.pki.models import IssuedCertificate
from certdesk.tokens.models import UsbKey, UsbKeyStatus
from certdesk.tokens.services import usb_key_create, usb_key_mark_issued
from tests.api.conftest import SoftwareKey
from tests.api.schema_check import CheckedApi

pytestmark = pytest.mark.django_db


def _open(api: CheckedApi, code: str, sn: str) -> str:
    answer = api.post("sessions", {"pairing_code": code, "key_sn": sn})
    assert answer.status == 201, answer.body
    return str(answer.body["token"])


# ---- the document --------------------------------------------------------------------------------


def test_the_served_document_is_valid_openapi_31_and_covers_every_route(api: CheckedApi) -> None:
    answer = api.get("openapi.json")
    assert answer.status == 200
    assert answer.body == openapi_document()
    openapi_validate(answer.body)  # the OpenAPI 3.1 meta-schema
    assert answer.body["openapi"] == "3.1.0"
    routes = {
        f"/api/{pattern.pattern}"
        for pattern in get_resolver("certdesk.api.urls").url_patterns
        if isinstance(pattern, URLPattern) and "(?P<rest>" not in str(pattern.pattern)
    }
    assert routes == set(answer.body["paths"])


# ---- the station writes a dual-certificate key ---------------------------------------------------


def test_station_write_over_http_every_answer_as_documented(
    file_ca: Any, api: CheckedApi, paid_order: Order, stock_key: UsbKey, write_code: str
) -> None:
    opened = api.post("sessions", {"pairing_code": write_code.lower(), "key_sn": stock_key.sn})
    assert opened.status == 201
    token = opened.body["token"]
    assert opened.body["operation"] == "write"
    assert opened.body["order"] == {
        "number": paid_order.number,
        "business_type": "new",
        "business_type_label": "证书新办",
    }
    assert opened.body["subject"]["organisation_name"] == "重庆东方测试有限公司"
    assert opened.body["subject"]["uscc"] == "91110000600037341L"
    assert opened.body["roles"] == ["sign", "enc"]
    assert (opened.body["key_algorithm"], opened.body["renewal_of"], opened.body["key_sn"]) == (
        "ec-p256",
        None,
        stock_key.sn,
    )
    assert opened.body["progress"] == {"certificates": [], "all_installed": False, "unlock_pending": False}
    assert opened.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in opened.headers

    sign_key, enc_key = SoftwareKey(), SoftwareKey()
    sign = api.post("certificates", {"role": "sign", "csr_pem": sign_key.csr_pem()}, token=token)
    assert sign.status == 200, sign.body
    certificate = x509.load_pem_x509_certificate(sign.body["certificate_pem"].encode())
    assert format(certificate.serial_number, "x") == sign.body["serial"].lower().lstrip("0")
    assert certificate.public_key() == sign_key.private.public_key()
    assert len(x509.load_pem_x509_certificates(sign.body["chain_pem"].encode())) == 2

    # A restarted agent sees what is done so far.
    progress = api.get("session", token=token).body["progress"]
    assert [(c["role"], c["status"], c["serial"]) for c in progress["certificates"]] == [
        ("sign", "issued", sign.body["serial"])
    ]

    # The encryption pair cannot sign a CSR: its public key comes with a proof by the signing key.
    pop = sign_key.pop_for(enc_key, order_number=paid_order.number, key_sn=stock_key.sn)
    enc = api.post(
        "certificates", {"role": "enc", "public_key_pem": enc_key.public_pem, "pop_signature": pop}, token=token
    )
    assert enc.status == 200, enc.body
    enc_certificate = x509.load_pem_x509_certificate(enc.body["certificate_pem"].encode())
    assert enc_certificate.public_key() == enc_key.private.public_key()
    usage = enc_certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_agreement and not usage.digital_signature

    # The same request again: the same certificate, nothing new signed.
    again = api.post("certificates", {"role": "sign", "csr_pem": sign_key.csr_pem()}, token=token)
    assert again.body["serial"] == sign.body["serial"]
    assert IssuedCertificate.objects.filter(reference=paid_order.number).count() == 2

    done = api.post("confirm", {"serials": [sign.body["serial"], enc.body["serial"]]}, token=token)
    assert done.status == 200
    assert done.body == {"order_status": "to_ship", "order_status_label": "待发货"}
    assert api.post("confirm", {"serials": [sign.body["serial"], enc.body["serial"]]}, token=token).body == done.body
    state = api.get("session", token=token).body
    assert state["operation_pending"] is False
    assert state["progress"]["all_installed"] is True
    assert {c["status"] for c in state["progress"]["certificates"]} == {"installed"}
    stock_key.refresh_from_db()
    assert stock_key.status == UsbKeyStatus.ISSUED

    assert {(method, path) for method, path, _status in api.seen} >= {
        ("post", f"{PREFIX}/sessions"),
        ("get", f"{PREFIX}/session"),
        ("post", f"{PREFIX}/certificates"),
        ("post", f"{PREFIX}/confirm"),
    }


def test_the_encryption_proof_must_come_from_this_orders_signing_key(
    file_ca: Any, api: CheckedApi, paid_order: Order, stock_key: UsbKey, write_code: str
) -> None:
    token = _open(api, write_code, stock_key.sn)
    sign_key, enc_key, stranger = SoftwareKey(), SoftwareKey(), SoftwareKey()

    def enc(signer: SoftwareKey, **changes: str) -> Any:
        pop = signer.pop_for(
            enc_key, order_number=changes.get("order", paid_order.number), key_sn=changes.get("sn", stock_key.sn)
        )
        return api.post(
            "certificates", {"role": "enc", "public_key_pem": enc_key.public_pem, "pop_signature": pop}, token=token
        )

    first = enc(sign_key)
    assert (first.status, first.code) == (409, "sign_certificate_missing")
    assert api.post("certificates", {"role": "sign", "csr_pem": sign_key.csr_pem()}, token=token).status == 200
    for answer in (enc(stranger), enc(sign_key, order="GX0000000000000"), enc(sign_key, sn="5500000777")):
        assert (answer.status, answer.code) == (400, "pop_invalid")
    pop = sign_key.pop_for(enc_key, order_number=paid_order.number, key_sn=stock_key.sn)
    signing_by_key = api.post(
        "certificates", {"role": "sign", "public_key_pem": enc_key.public_pem, "pop_signature": pop}, token=token
    )
    assert (signing_by_key.status, signing_by_key.code) == (400, "csr_required")
    assert enc(sign_key).status == 200
    assert IssuedCertificate.objects.filter(reference=paid_order.number).count() == 2


# ---- refusals ------------------------------------------------------------------------------------


def test_no_or_a_bad_session_is_401(
    file_ca: Any, api: CheckedApi, paid_order: Order, stock_key: UsbKey, write_code: str
) -> None:
    for token in (None, "not-a-token"):
        answer = api.get("session", token=token)
        assert (answer.status, answer.code) == (401, "session_invalid")
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert api.post("confirm", {"serials": ["ab"]}, token=token).status == 401
    token = _open(api, write_code, stock_key.sn)
    AgentSession.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    answer = api.post("certificates", {"role": "sign", "csr_pem": SoftwareKey().csr_pem()}, token=token)
    assert (answer.status, answer.code) == (401, "session_invalid")
    assert "过期" in answer.body["message"]


@pytest.mark.parametrize(
    ("raw", "content_type", "code"),
    [
        (b"{not json", "application/json", "json_invalid"),
        (b"[1, 2]", "application/json", "json_invalid"),
        (b"", "application/json", "json_invalid"),
        (b"role=sign", "application/x-www-form-urlencoded", "json_required"),
        (b'{"role": "sign"}', "application/json", "invalid_request"),
        (b'{"role": "root", "csr_pem": "x"}', "application/json", "invalid_request"),
        (
            b'{"role": "sign", "csr_pem": "x", "public_key_pem": "y", "pop_signature": "AA=="}',
            "application/json",
            "invalid_request",
        ),
        (b'{"role": "enc", "public_key_pem": "y"}', "application/json", "invalid_request"),
        (b'{"role": "enc", "public_key_pem": "y", "pop_signature": "%%%"}', "application/json", "invalid_request"),
        (b'{"role": "sign", "csr_pem": null}', "application/json", "invalid_request"),
        (b'{"role": "sign", "csr_pem": "x", "admin": true}', "application/json", "invalid_request"),
        (b'{"role": "sign", "csr_pem": "' + b"A" * 70_000 + b'"}', "application/json", "body_too_large"),
        (b'{"role": "sign", "csr_pem": "not a CSR"}', "application/json", "csr_malformed"),
    ],
)
def test_bad_input_is_400_with_a_reason(
    file_ca: Any, api: CheckedApi, stock_key: UsbKey, write_code: str, raw: bytes, content_type: str, code: str
) -> None:
    token = _open(api, write_code, stock_key.sn)
    answer = api.post("certificates", raw=raw, content_type=content_type, token=token)
    assert (answer.status, answer.code) == (400, code), answer.body
    assert answer.body["message"]


def test_a_key_the_ca_refuses_is_400(file_ca: Any, api: CheckedApi, stock_key: UsbKey, write_code: str) -> None:
    token = _open(api, write_code, stock_key.sn)
    private = ed25519.Ed25519PrivateKey.generate()
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(private, None)
    answer = api.post(
        "certificates", {"role": "sign", "csr_pem": csr.public_bytes(serialization.Encoding.PEM).decode()}, token=token
    )
    assert answer.status == 400
    assert answer.code.startswith("key_")


def test_confirm_needs_every_role_and_known_serials(
    file_ca: Any, api: CheckedApi, stock_key: UsbKey, write_code: str
) -> None:
    token = _open(api, write_code, stock_key.sn)
    sign = api.post("certificates", {"role": "sign", "csr_pem": SoftwareKey().csr_pem()}, token=token)
    missing = api.post("confirm", {"serials": [sign.body["serial"]]}, token=token)
    assert (missing.status, missing.code) == (409, "roles_missing")
    assert "加密证书" in missing.body["message"]
    unknown = api.post("confirm", {"serials": ["0badc0ffee"]}, token=token)
    assert (unknown.status, unknown.code) == (400, "serial_unknown")
    assert api.post("confirm", {"serials": ["not-hex"]}, token=token).code == "invalid_request"
    assert api.post("confirm", {"serials": []}, token=token).code == "invalid_request"


def test_a_session_does_only_its_own_operation(
    file_ca: Any, api: CheckedApi, stock_key: UsbKey, write_code: str
) -> None:
    token = _open(api, write_code, stock_key.sn)
    for route, body in (("unlock/start", None), ("unlock/finish", {"ok": True})):
        answer = api.post(route, body, token=token)
        assert (answer.status, answer.code) == (403, "wrong_operation")


def test_pairing_refusals(
    file_ca: Any, api: CheckedApi, paid_order: Order, issuer: User, stock_key: UsbKey, write_code: str
) -> None:
    bad = api.post("sessions", {"pairing_code": "ZZZZ-ZZZZ", "key_sn": stock_key.sn})
    assert (bad.status, bad.code) == (401, "pairing_invalid")
    malformed = api.post("sessions", {"pairing_code": "12", "key_sn": "x"})
    assert malformed.status == 400
    assert {e["field"] for e in malformed.body["errors"]} == {"pairing_code", "key_sn"}

    # A key that is not blank stock cannot be written at the station.
    used = usb_key_create(sn="5500000099", so_pin="SoPin-654321")
    usb_key_mark_issued(key=used, owner_uscc="91110000600037341L")
    refused = api.post("sessions", {"pairing_code": write_code, "key_sn": used.sn})
    assert (refused.status, refused.code) == (403, "key_not_in_stock")
    # The code is spent by that attempt.
    assert api.post("sessions", {"pairing_code": write_code, "key_sn": stock_key.sn}).code == "pairing_invalid"

    # The order moved on between pairing and opening.
    code = agent_pairing_create(order=paid_order, actor=issuer).code
    Order.objects.filter(pk=paid_order.pk).update(status=OrderStatus.REFUNDED)
    changed = api.post("sessions", {"pairing_code": code, "key_sn": stock_key.sn})
    assert (changed.status, changed.code) == (409, "order_changed")


def test_the_download_key_must_be_the_orders(
    file_ca: Any, api: CheckedApi, customer: User, unlock_order: Order, unlock_key: UsbKey
) -> None:
    Order.objects.filter(pk=unlock_order.pk).update(business_type="renew", status=OrderStatus.READY_TO_DOWNLOAD)
    unlock_order.refresh_from_db()
    other = usb_key_create(sn="5500000077", so_pin="SoPin-777777")
    code = agent_pairing_create(order=unlock_order, actor=customer).code
    answer = api.post("sessions", {"pairing_code": code, "key_sn": other.sn})
    assert (answer.status, answer.code) == (403, "key_mismatch")
    assert unlock_key.sn in answer.body["message"]


def test_session_opening_is_rate_limited_per_address(
    settings: Any, api: CheckedApi, stock_key: UsbKey, write_code: str
) -> None:
    settings.AGENT_API_OPEN_MAX_FAILURES = 3
    for _ in range(3):
        assert api.post("sessions", {"pairing_code": "ZZZZ-ZZZZ", "key_sn": stock_key.sn}).status == 401
    limited = api.post("sessions", {"pairing_code": write_code, "key_sn": stock_key.sn})
    assert (limited.status, limited.code) == (429, "rate_limited")
    assert 0 < int(limited.headers["Retry-After"]) <= 15 * 60
    # The valid code was not even looked at: another address can still use it.
    elsewhere = CheckedApi(client=Client(), remote_addr="192.0.2.7")
    assert elsewhere.post("sessions", {"pairing_code": write_code, "key_sn": stock_key.sn}).status == 201


def test_unknown_routes_and_methods_answer_json(api: CheckedApi) -> None:
    assert api.get("nothing-here").code == "not_found"
    assert api.post("sessions/", {}).status == 404
    wrong = api.get("sessions")
    assert (wrong.status, wrong.code, wrong.headers["Allow"]) == (405, "method_not_allowed", "POST")
    assert api.post("session", {}).status == 405


# ---- online unlock -------------------------------------------------------------------------------


def test_unlock_releases_the_admin_pin_once_and_never_logs_it(
    api: CheckedApi, customer: User, unlock_order: Order, unlock_key: UsbKey, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = _open(api, agent_pairing_create(order=unlock_order, actor=customer).code, unlock_key.sn)
    session = api.get("session", token=token).body
    assert (session["operation"], session["roles"], session["progress"]["unlock_pending"]) == ("unlock", [], False)

    start = api.post("unlock/start", token=token)
    assert start.status == 200
    assert start.body["so_pin"] == "SoPin-111111"
    assert start.body["new_so_pin"] not in ("", "SoPin-111111")
    assert start.headers["Cache-Control"] == "no-store"
    assert api.get("session", token=token).body["progress"]["unlock_pending"] is True

    again = api.post("unlock/start", token=token)
    assert (again.status, again.code) == (409, "so_pin_already_released")
    assert "so_pin" not in again.body

    assert api.post("unlock/finish", {"ok": "yes"}, token=token).code == "invalid_request"
    finished = api.post("unlock/finish", {"ok": True}, token=token)
    assert finished.body == {"order_status": "completed", "order_status_label": "完成"}
    assert api.post("unlock/finish", {"ok": True}, token=token).status == 200  # a retry
    after = api.post("unlock/start", token=token)
    assert (after.status, after.code) == (409, "order_changed")

    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (start.body["so_pin"], start.body["new_so_pin"], token):
        assert secret not in logged


def test_a_failed_unlock_goes_to_remote_assistance(
    api: CheckedApi, customer: User, unlock_order: Order, unlock_key: UsbKey
) -> None:
    token = _open(api, agent_pairing_create(order=unlock_order, actor=customer).code, unlock_key.sn)
    assert api.post("unlock/start", token=token).status == 200
    answer = api.post("unlock/finish", {"ok": False, "error": "admin_pin_rejected: Key 拒绝了管理员 PIN"}, token=token)
    assert answer.body == {"order_status": "remote_assistance", "order_status_label": "远程协助"}
