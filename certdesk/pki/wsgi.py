"""A WSGI fast path for the OCSP responder.

OCSP is the one endpoint relying parties hit at volume, and it needs nothing
Django's request cycle offers: no session, user, CSRF, locale, messages or
templates. Passing each request through the URL resolver and fourteen
middlewares cost more CPU than answering it (docs/benchmarks.md), so
`ocsp_fast_path` answers POST /pki/ocsp/ and GET /pki/ocsp/<base64> itself
with the views' own answer functions (`certdesk.pki.views.ocsp_*_answer`), and
hands every other request to Django unchanged. The test suite checks the two
paths give the same bytes and headers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core import signals

from certdesk.core.middleware import PERMISSIONS_POLICY
from certdesk.pki import views

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
OCSP_PATH = "/pki/ocsp/"


def _security_headers() -> dict[str, str]:
    """What SecurityMiddleware, XFrameOptionsMiddleware and our SecurityHeadersMiddleware add to these answers."""
    headers = {"X-Frame-Options": getattr(settings, "X_FRAME_OPTIONS", "DENY")}
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers["X-Content-Type-Options"] = "nosniff"
    if settings.SECURE_REFERRER_POLICY:
        headers["Referrer-Policy"] = settings.SECURE_REFERRER_POLICY
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers["Cross-Origin-Opener-Policy"] = settings.SECURE_CROSS_ORIGIN_OPENER_POLICY
    headers["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY
    headers["Permissions-Policy"] = PERMISSIONS_POLICY
    return headers


def _hsts_header() -> tuple[str, str] | None:
    """SecurityMiddleware's Strict-Transport-Security, added to answers given over HTTPS."""
    if not settings.SECURE_HSTS_SECONDS:
        return None
    value = f"max-age={settings.SECURE_HSTS_SECONDS}"
    if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        value += "; includeSubDomains"
    if settings.SECURE_HSTS_PRELOAD:
        value += "; preload"
    return ("Strict-Transport-Security", value)


def _is_secure(environ: dict[str, Any]) -> bool:
    """Django's `HttpRequest.is_secure()` on a WSGI environ (SECURE_PROXY_SSL_HEADER behind the proxy)."""
    if settings.SECURE_PROXY_SSL_HEADER:
        header, secure_value = settings.SECURE_PROXY_SSL_HEADER
        forwarded = environ.get(header)
        if forwarded is not None:
            return str(forwarded).split(",", 1)[0].strip() == secure_value
    return environ.get("wsgi.url_scheme") == "https"


def ocsp_fast_path(django_app: WsgiApp) -> WsgiApp:
    """Wrap the project's WSGI application (config/wsgi.py does)."""
    security_headers = list(_security_headers().items())
    hsts = _hsts_header()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD")
        if not path.startswith(OCSP_PATH) or method not in ("GET", "POST"):
            return django_app(environ, start_response)
        encoded = path[len(OCSP_PATH) :]
        if (method == "POST") == bool(encoded):  # POST with a suffix, or GET without: Django's 404/405
            return django_app(environ, start_response)
        # Django's request_started/request_finished: old or broken database connections are closed.
        signals.request_started.send(sender=None, environ=environ)
        try:
            if method == "POST":
                der, headers = views.ocsp_post_answer(
                    content_length=environ.get("CONTENT_LENGTH"), read=environ["wsgi.input"].read
                )
            else:
                # WSGI decoded the path as latin-1; base64 is ASCII, so anything else is malformed anyway.
                der, headers = views.ocsp_get_answer(encoded)
        finally:
            signals.request_finished.send(sender=None)
        response_headers = [*headers.items(), ("Content-Length", str(len(der))), *security_headers]
        if hsts is not None and _is_secure(environ):
            response_headers.append(hsts)
        start_response("200 OK", response_headers)
        return [der]

    return app
