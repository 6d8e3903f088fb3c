"""The OCSP responder as its own service: an ASGI application for gunicorn's uvicorn worker.

OCSP is the one endpoint relying parties hit at volume, and it needs nothing
of Django's request cycle (session, user, CSRF, locale, templates). Under
gunicorn's threaded WSGI worker, HTTP handling in Python (request parsing, the
keep-alive poller, the hand-off to a thread) cost several times the answer;
uvicorn parses HTTP in C on an event loop and answered about twice as many
requests on the same two cores (docs/benchmarks.md). `config/ocsp.py` builds
this application; nginx sends /pki/ocsp/ to it (docs/deployment.md). The
portal's own URLs still answer OCSP too, through the views, for a one-process
setup such as `make run`.

The answers are the views' functions (`certdesk.pki.views.ocsp_*_answer`), so
both give the same bytes and headers (tests/pki/test_pki_asgi.py). They are
synchronous and may read the database, which must not block the event loop:
each runs in a small thread pool, whose threads keep their database
connections between requests as gunicorn's threads do.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.handlers.wsgi import WSGIRequest
from django.db import connections
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string

from certdesk.pki import conf, responder, views

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Answer = tuple[bytes, dict[str, str]]
Header = tuple[bytes, bytes]
OCSP_PATH = "/pki/ocsp/"


# The portal's middleware whose response half adds security headers (of settings.MIDDLEWARE, in its order).
SECURITY_MIDDLEWARE = frozenset(
    {
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
        "certdesk.core.middleware.SecurityHeadersMiddleware",
    }
)


def _no_view(request: HttpRequest) -> HttpResponse:
    raise AssertionError("only the middleware's response half runs here")


def _security_headers(*, secure: bool) -> list[Header]:
    """The headers the portal's security middleware add to an answer, over HTTPS or not: their response
    halves run once, at start-up, on an empty answer (inner first, as Django runs them). The service
    skips Django's handler, not its headers; no request half runs (no HTTPS redirect for OCSP)."""
    request = WSGIRequest(
        {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": OCSP_PATH,
            "SERVER_NAME": "ocsp",
            "SERVER_PORT": "443" if secure else "80",
            "wsgi.url_scheme": "https" if secure else "http",
            "wsgi.input": io.BytesIO(),
        }
    )
    response = HttpResponse()
    own = set(response.headers)  # Content-Type: the answer's own
    for path in reversed(settings.MIDDLEWARE):
        if path in SECURITY_MIDDLEWARE:
            response = import_string(path)(_no_view).process_response(request, response)
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.items() if name not in own
    ]


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _is_secure(scope: Scope) -> bool:
    """Django's `HttpRequest.is_secure()` on an ASGI scope (SECURE_PROXY_SSL_HEADER behind the proxy)."""
    if settings.SECURE_PROXY_SSL_HEADER:
        meta_name, secure_value = settings.SECURE_PROXY_SSL_HEADER
        forwarded = _header(scope, meta_name.removeprefix("HTTP_").lower().replace("_", "-").encode("latin-1"))
        if forwarded is not None:
            return forwarded.decode("latin-1").split(",", 1)[0].strip() == secure_value
    return scope.get("scheme") == "https"


async def _request_body(receive: Receive, *, limit: int) -> bytes:
    """The body, or its first `limit` + 1 bytes: anything longer is refused unread."""
    body = b""
    more = True
    while more and len(body) <= limit:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


def _answered(answer: Callable[[], Answer]) -> Answer:
    # Django's request_started/request_finished: old or broken database connections are closed.
    signals.request_started.send(sender=None)
    try:
        return answer()
    finally:
        signals.request_finished.send(sender=None)


async def _plain(send: Send, status: int, text: bytes, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"%d" % len(text)),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": text})


def _executor_stop(executor: ThreadPoolExecutor, threads: int) -> None:
    """Close each pool thread's database connections (Django's are per thread), then stop the pool."""
    # One task per thread: each waits until all threads hold one, so no thread takes two.
    barrier = threading.Barrier(threads)

    def close() -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=5)
        connections.close_all()

    wait([executor.submit(close) for _ in range(threads)])
    executor.shutdown(wait=True)


async def _lifespan(receive: Receive, send: Send, stop: Callable[[], None]) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await asyncio.get_running_loop().run_in_executor(None, stop)
            await send({"type": "lifespan.shutdown.complete"})
            return


def ocsp_application(*, threads: int | None = None) -> AsgiApp:
    """POST /pki/ocsp/ and GET /pki/ocsp/<base64>; 405 for other methods there, 404 elsewhere."""
    threads = threads or conf.ocsp_service_threads()
    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ocsp")
    plain_headers, https_headers = _security_headers(secure=False), _security_headers(secure=True)
    # Without HSTS the two are the same, and the request's scheme need not be looked at.
    https_differs = https_headers != plain_headers

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, lambda: _executor_stop(executor, threads))
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if not path.startswith(OCSP_PATH):
            await _plain(send, 404, b"Not Found")
            return
        encoded = path[len(OCSP_PATH) :]
        answer: Callable[[], Answer]
        if method == "POST" and not encoded:
            declared = _header(scope, b"content-length")
            body = await _request_body(receive, limit=responder.MAX_REQUEST_BYTES)

            def answer() -> Answer:
                # Refused on the declared length, as the view refuses it, before anything is parsed.
                length = declared.decode("latin-1") if declared is not None else None
                return views.ocsp_post_answer(content_length=length, read=lambda n: body[:n])

        elif method == "GET" and encoded:

            def answer() -> Answer:
                return views.ocsp_get_answer(encoded)

        else:
            await _plain(send, 405, b"Method Not Allowed", ((b"allow", b"GET" if encoded else b"POST"),))
            return
        der, headers = await asyncio.get_running_loop().run_in_executor(executor, _answered, answer)
        response_headers = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
        secure = https_differs and _is_secure(scope)
        response_headers += [(b"content-length", b"%d" % len(der)), *(https_headers if secure else plain_headers)]
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})
        await send({"type": "http.response.body", "body": der})

    return app
