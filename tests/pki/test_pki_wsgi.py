"""The OCSP WSGI fast path answers exactly as the Django views do, and passes everything else on."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from pkitestlib import issue, load_pem

from certdesk.pki import responder
from certdesk.pki.services import HierarchyInitResult, certificate_revoke
from certdesk.pki.types import RevocationReason
from certdesk.pki.wsgi import ocsp_fast_path

# Headers that depend on Django's request cycle, not on the answer.
CYCLE_ONLY = {"content-language", "vary"}


class Answer:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = {name.lower(): value for name, value in headers}
        self.body = body


def _call(app: Any, method: str, path: str, body: bytes = b"", **extra: str) -> Answer:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)) if body else "",
        "CONTENT_TYPE": "application/ocsp-request" if body else "",
        "SERVER_NAME": "testserver",
        **extra,
    }
    setup_testing_defaults(environ)
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen["status"], seen["headers"] = status, headers

    chunks = app(environ, start_response)
    try:
        data = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return Answer(seen["status"], seen["headers"], data)


@pytest.fixture
def transaction_kept() -> Iterator[None]:
    # As Django's test client does: the test's transaction must survive the request signals.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def apps(transaction_kept: None) -> tuple[Any, Any]:
    django_app = WSGIHandler()
    return django_app, ocsp_fast_path(django_app)


def _request_der(certificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1())  # noqa: S303
    return builder.build().public_bytes(serialization.Encoding.DER)


def _assert_same(fast: Answer, slow: Answer) -> None:
    assert fast.status == slow.status == "200 OK"
    assert fast.body == slow.body
    slow_headers = {k: v for k, v in slow.headers.items() if k not in CYCLE_ONLY}
    assert {k: v for k, v in fast.headers.items() if k in slow_headers} == slow_headers
    assert set(fast.headers) - set(slow_headers) <= CYCLE_ONLY


def test_post_and_get_answers_match_the_views(ca: HierarchyInitResult, apps: tuple[Any, Any]) -> None:
    django_app, fast_app = apps
    issuing = x509.load_der_x509_certificate(bytes(ca.issuing.certificate_der or b""))
    good = load_pem(issue().certificate_pem)
    revoked = load_pem(issue().certificate_pem)
    certificate_revoke(serial=f"{revoked.serial_number:X}", reason=RevocationReason.KEY_COMPROMISE)

    for certificate, status in ((good, ocsp.OCSPCertStatus.GOOD), (revoked, ocsp.OCSPCertStatus.REVOKED)):
        der = _request_der(certificate, issuing)
        fast = _call(fast_app, "POST", "/pki/ocsp/", der)
        _assert_same(fast, _call(django_app, "POST", "/pki/ocsp/", der))
        assert ocsp.load_der_ocsp_response(fast.body).certificate_status == status
        assert fast.headers["cache-control"] == "no-store"

        encoded = base64.b64encode(der).decode()
        fast = _call(fast_app, "GET", "/pki/ocsp/" + encoded)
        _assert_same(fast, _call(django_app, "GET", "/pki/ocsp/" + encoded))
        assert fast.headers["cache-control"].startswith("public, max-age=")
        assert fast.headers["x-content-type-options"] == "nosniff"


def test_ocsp_requests_do_not_reach_django(ca: HierarchyInitResult, apps: tuple[Any, Any]) -> None:
    django_app, _ = apps
    reached: list[str] = []

    def counting_app(environ: dict[str, Any], start_response: Any) -> Any:
        reached.append(environ["PATH_INFO"])
        return django_app(environ, start_response)

    fast_app = ocsp_fast_path(counting_app)
    issuing = x509.load_der_x509_certificate(bytes(ca.issuing.certificate_der or b""))
    der = _request_der(load_pem(issue().certificate_pem), issuing)
    assert _call(fast_app, "POST", "/pki/ocsp/", der).status == "200 OK"
    assert _call(fast_app, "GET", "/pki/ocsp/" + base64.b64encode(der).decode()).status == "200 OK"
    assert reached == []
    assert _call(fast_app, "GET", "/pki/ca/root.crt").status == "200 OK"
    assert reached == ["/pki/ca/root.crt"]


@pytest.mark.parametrize("forwarded_proto", ["https", "http"])
def test_answers_over_https_carry_hsts_as_django_would(
    ca: HierarchyInitResult, settings: Any, transaction_kept: None, forwarded_proto: str
) -> None:
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    django_app = WSGIHandler()
    fast_app = ocsp_fast_path(django_app)  # reads the settings when it is built, as config/wsgi.py does
    issuing = x509.load_der_x509_certificate(bytes(ca.issuing.certificate_der or b""))
    der = _request_der(load_pem(issue().certificate_pem), issuing)
    fast = _call(fast_app, "POST", "/pki/ocsp/", der, HTTP_X_FORWARDED_PROTO=forwarded_proto)
    _assert_same(fast, _call(django_app, "POST", "/pki/ocsp/", der, HTTP_X_FORWARDED_PROTO=forwarded_proto))
    assert ("strict-transport-security" in fast.headers) == (forwarded_proto == "https")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/pki/ocsp/", b"\x30\x03garbage"),
        ("POST", "/pki/ocsp/", b"x" * (responder.MAX_REQUEST_BYTES + 1)),
        ("POST", "/pki/ocsp/", b""),
        ("GET", "/pki/ocsp/not*base64!", b""),
        ("GET", "/pki/ocsp/AAAA", b""),
    ],
)
def test_malformed_requests_get_the_same_malformed_answer(
    ca: HierarchyInitResult, apps: tuple[Any, Any], method: str, path: str, body: bytes
) -> None:
    django_app, fast_app = apps
    fast = _call(fast_app, method, path, body)
    _assert_same(fast, _call(django_app, method, path, body))
    assert fast.body == responder.MALFORMED_REQUEST


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/pki/ca/issuing.crt", "200 OK"),
        ("GET", "/pki/ocsp/", "405 Method Not Allowed"),  # only POST without a request in the path
        ("PUT", "/pki/ocsp/", "405 Method Not Allowed"),
        ("GET", "/pki/ocspx", "404 Not Found"),
    ],
)
def test_other_requests_go_to_django(
    ca: HierarchyInitResult, apps: tuple[Any, Any], method: str, path: str, status: str
) -> None:
    django_app, fast_app = apps
    fast = _call(fast_app, method, path)
    slow = _call(django_app, method, path)
    assert fast.status == slow.status == status
    assert fast.body == slow.body
