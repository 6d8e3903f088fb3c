"""The OCSP service (certdesk/pki/asgi.py) answers exactly as the Django views do, and over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished
from django.db import connections
from pkitestlib import issue, load_pem, openssl, pem, write

from certdesk.core.middleware import PERMISSIONS_POLICY
from certdesk.pki import responder
from certdesk.pki.asgi import AsgiApp, ocsp_application
from certdesk.pki.services import HierarchyInitResult, certificate_revoke
from certdesk.pki.types import RevocationReason


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    """asyncio.run in a thread of its own: a browser test's Playwright may own this thread's event loop."""
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, coroutine).result()


# Headers that depend on Django's request cycle, not on the answer.
CYCLE_ONLY = {"content-language", "vary"}


class Answer:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = {name.lower(): value for name, value in headers}
        self.body = body


def _django(method: str, path: str, body: bytes = b"", **extra: str) -> Answer:
    """The portal's answer: Django's WSGI handler, URL resolver, middleware and views."""
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

    chunks = WSGIHandler()(environ, start_response)
    try:
        data = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return Answer(int(seen["status"].split()[0]), seen["headers"], data)


def _service(
    app: AsgiApp, method: str, path: str, body: bytes = b"", *, headers: dict[str, str] | None = None
) -> Answer:
    """The OCSP service's answer, the body sent in two parts as a server may deliver it."""
    sent: list[dict[str, Any]] = []
    parts = [body[: len(body) // 2], body[len(body) // 2 :]]
    request_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if body:
        request_headers.append((b"content-length", str(len(body)).encode()))
    scope = {"type": "http", "method": method, "path": path, "scheme": "http", "headers": request_headers}

    async def receive() -> dict[str, Any]:
        part = parts.pop(0) if parts else b""
        return {"type": "http.request", "body": part, "more_body": bool(parts)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    _run(app(scope, receive, send))
    start, body_message = sent
    return Answer(
        start["status"], [(k.decode(), v.decode()) for k, v in start["headers"]], body_message.get("body", b"")
    )


def _stop(app: AsgiApp) -> None:
    """What the server does when it stops: the lifespan's shutdown."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.shutdown"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    _run(app({"type": "lifespan"}, receive, send))
    assert sent == [{"type": "lifespan.shutdown.complete"}]


@pytest.fixture
def service(live_ca: HierarchyInitResult) -> Iterator[AsgiApp]:
    # live_ca: the database is committed, so the service's own threads (own connections) see it.
    app = ocsp_application(threads=2)
    yield app
    _stop(app)


def _request_der(certificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1())  # noqa: S303
    return builder.build().public_bytes(serialization.Encoding.DER)


def _without_max_age(headers: dict[str, str]) -> dict[str, str]:
    """max-age counts down to nextUpdate from the moment of answering: the two answers may be a second apart."""
    return {k: re.sub(r"max-age=\d+", "max-age=…", v) for k, v in headers.items()}


def _assert_same(service: Answer, django: Answer) -> None:
    assert service.status == django.status == 200
    assert service.body == django.body
    django_headers = {k: v for k, v in django.headers.items() if k not in CYCLE_ONLY}
    assert _without_max_age({k: v for k, v in service.headers.items() if k in django_headers}) == _without_max_age(
        django_headers
    )
    assert set(service.headers) - set(django_headers) <= CYCLE_ONLY


def test_post_and_get_answers_match_the_views(live_ca: HierarchyInitResult, service: AsgiApp) -> None:
    issuing = x509.load_der_x509_certificate(bytes(live_ca.issuing.certificate_der or b""))
    good = load_pem(issue().certificate_pem)
    revoked = load_pem(issue().certificate_pem)
    certificate_revoke(serial=f"{revoked.serial_number:X}", reason=RevocationReason.KEY_COMPROMISE)

    for certificate, status in ((good, ocsp.OCSPCertStatus.GOOD), (revoked, ocsp.OCSPCertStatus.REVOKED)):
        der = _request_der(certificate, issuing)
        answer = _service(service, "POST", "/pki/ocsp/", der)
        _assert_same(answer, _django("POST", "/pki/ocsp/", der))
        assert ocsp.load_der_ocsp_response(answer.body).certificate_status == status
        assert answer.headers["cache-control"] == "no-store"

        encoded = base64.b64encode(der).decode()
        answer = _service(service, "GET", "/pki/ocsp/" + encoded)
        _assert_same(answer, _django("GET", "/pki/ocsp/" + encoded))
        assert answer.headers["cache-control"].startswith("public, max-age=")
        assert answer.headers["x-content-type-options"] == "nosniff"


def test_answers_run_in_the_pool_and_stopping_ends_its_threads(live_ca: HierarchyInitResult) -> None:
    seen: set[str] = set()
    app = ocsp_application(threads=2)
    issuing = x509.load_der_x509_certificate(bytes(live_ca.issuing.certificate_der or b""))
    der = _request_der(load_pem(issue().certificate_pem), issuing)
    for _ in range(4):
        assert _service(app, "POST", "/pki/ocsp/", der).status == 200
    for thread in threading.enumerate():
        if thread.name.startswith("ocsp"):
            seen.add(thread.name)
    assert 1 <= len(seen) <= 2
    _stop(app)
    assert not any(thread.name.startswith("ocsp") for thread in threading.enumerate())


@pytest.mark.parametrize("forwarded_proto", ["https", "http"])
def test_answers_over_https_carry_hsts_as_django_would(
    live_ca: HierarchyInitResult, settings: Any, forwarded_proto: str
) -> None:
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    app = ocsp_application(threads=1)  # reads the settings when it is built, as config/ocsp.py does
    issuing = x509.load_der_x509_certificate(bytes(live_ca.issuing.certificate_der or b""))
    der = _request_der(load_pem(issue().certificate_pem), issuing)
    answer = _service(app, "POST", "/pki/ocsp/", der, headers={"X-Forwarded-Proto": forwarded_proto})
    _assert_same(answer, _django("POST", "/pki/ocsp/", der, HTTP_X_FORWARDED_PROTO=forwarded_proto))
    assert ("strict-transport-security" in answer.headers) == (forwarded_proto == "https")
    _stop(app)


def test_the_service_adds_the_headers_the_portals_middleware_adds(live_ca: HierarchyInitResult, settings: Any) -> None:
    # A portal without the clickjacking middleware and with another referrer policy: the service follows it.
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("XFrameOptionsMiddleware")]
    settings.SECURE_REFERRER_POLICY = "no-referrer"
    app = ocsp_application(threads=1)
    issuing = x509.load_der_x509_certificate(bytes(live_ca.issuing.certificate_der or b""))
    der = _request_der(load_pem(issue().certificate_pem), issuing)
    answer = _service(app, "POST", "/pki/ocsp/", der)
    _assert_same(answer, _django("POST", "/pki/ocsp/", der))
    assert "x-frame-options" not in answer.headers
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["permissions-policy"] == PERMISSIONS_POLICY
    _stop(app)


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
    service: AsgiApp, method: str, path: str, body: bytes
) -> None:
    answer = _service(service, method, path, body)
    _assert_same(answer, _django(method, path, body))
    assert answer.body == responder.MALFORMED_REQUEST


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/pki/ocsp/", 405, "POST"),  # only POST without a request in the path
        ("PUT", "/pki/ocsp/", 405, "POST"),
        ("DELETE", "/pki/ocsp/AAAA", 405, "GET"),
        ("GET", "/pki/ocspx", 404, None),
        ("GET", "/pki/ca/issuing.crt", 404, None),  # the portal serves the rest
    ],
)
def test_other_requests_are_refused_as_the_portal_refuses_them(
    service: AsgiApp, method: str, path: str, status: int, allow: str | None
) -> None:
    answer = _service(service, method, path)
    assert answer.status == status
    assert answer.headers.get("allow") == allow
    if path == "/pki/ocsp/":  # (the portal refuses DELETE /pki/ocsp/… earlier, for want of a CSRF token)
        assert _django(method, path).status == status


@pytest.fixture
def service_url(service: AsgiApp) -> Iterator[str]:
    """The service behind uvicorn's HTTP server (httptools, as under gunicorn's uvicorn worker)."""
    server = uvicorn.Server(  # port 0: the system picks a free one, read back once the server listens
        uvicorn.Config(service, host="127.0.0.1", port=0, http="httptools", lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_openssl_ocsp_against_the_service(live_ca: HierarchyInitResult, service_url: str, tmp_path: Path) -> None:
    root = write(tmp_path / "root.pem", pem(x509.load_der_x509_certificate(bytes(live_ca.root.certificate_der or b""))))
    issuing = write(
        tmp_path / "issuing.pem", pem(x509.load_der_x509_certificate(bytes(live_ca.issuing.certificate_der or b"")))
    )
    good = write(tmp_path / "good.pem", issue().certificate_pem)
    revoked_result = issue()
    revoked = write(tmp_path / "revoked.pem", revoked_result.certificate_pem)
    certificate_revoke(serial=revoked_result.serial, reason=RevocationReason.KEY_COMPROMISE)

    def ask(*target: str | Path) -> str:
        result = openssl(
            "ocsp", "-issuer", issuing, *target, "-url", f"{service_url}/pki/ocsp/",
            "-CAfile", root, "-verify_other", issuing,
        )  # fmt: skip
        return result.stdout + result.stderr

    out = ask("-cert", good)
    assert "Response verify OK" in out and f"{good}: good" in out
    assert "WARNING" not in out  # the nonce was echoed
    out = ask("-cert", revoked, "-no_nonce")
    assert "Response verify OK" in out and f"{revoked}: revoked" in out and "Reason: keyCompromise" in out
    out = ask("-serial", "0x0BADC0FFEE")
    assert "Response verify OK" in out and "0x0BADC0FFEE: unknown" in out


def test_stopping_closes_the_threads_database_connections(live_ca: HierarchyInitResult) -> None:
    if connections["default"].vendor == "sqlite":
        pytest.skip("SQLite connections are not kept between requests, and an in-memory test database never closes")
    # As in production (DATABASES' CONN_MAX_AGE, 60 s by default): a thread keeps its connection between requests.
    assert connections["default"].settings_dict["CONN_MAX_AGE"] > 0
    app = ocsp_application(threads=2)
    opened: list[Any] = []

    def remember(**_: Any) -> None:
        opened.append(connections["default"])

    request_finished.connect(remember)
    try:
        issuing = x509.load_der_x509_certificate(bytes(live_ca.issuing.certificate_der or b""))
        der = _request_der(load_pem(issue().certificate_pem), issuing)
        assert _service(app, "POST", "/pki/ocsp/", der).status == 200
    finally:
        request_finished.disconnect(remember)
    assert opened and all(connection.connection is not None for connection in opened)
    _stop(app)
    assert all(connection.connection is None for connection in opened)
