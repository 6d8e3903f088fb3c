"""Publication endpoints: CA certificates, CRLs, OCSP. They parse and call; nothing more."""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
from collections.abc import Callable

from cryptography import x509
from cryptography.x509 import ocsp
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.http import http_date
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from certdesk.pki import responder, selectors, services
from certdesk.pki.errors import CaNotInitialised


def cache_headers(*, body: bytes, last_modified: datetime.datetime, expires: datetime.datetime) -> dict[str, str]:
    max_age = max(0, int((expires - timezone.now()).total_seconds()))
    return {
        "Cache-Control": f"public, max-age={max_age}, no-transform, must-revalidate",
        "Last-Modified": http_date(last_modified.timestamp()),
        "Expires": http_date(expires.timestamp()),
        "ETag": '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
    }


@require_GET
def ca_certificate(request: HttpRequest, role: str) -> HttpResponse:
    try:
        der = selectors.ca_certificate_der(role=role)
    except CaNotInitialised:
        raise Http404("CA not initialised") from None
    response = HttpResponse(der, content_type="application/pkix-cert")
    response["Content-Disposition"] = f'inline; filename="{role}.crt"'
    response["Cache-Control"] = "public, max-age=86400"
    return response


@require_GET
def crl(request: HttpRequest, role: str) -> HttpResponse:
    try:
        latest = selectors.crl_latest(role=role)
    except CaNotInitialised:
        raise Http404("CA not initialised") from None
    if latest is None:
        raise Http404("no CRL yet")
    der = bytes(latest.der)
    # A revocation publishes a new CRL at once; let caches revalidate well before nextUpdate.
    expires = min(latest.next_update, timezone.now() + datetime.timedelta(hours=1))
    return HttpResponse(
        der,
        content_type="application/pkix-crl",
        headers={
            "Content-Disposition": f'inline; filename="{role}.crl"',
            **cache_headers(body=der, last_modified=latest.this_update, expires=expires),
        },
    )


# The OCSP answers are plain functions of the request so the OCSP service (certdesk.pki.asgi) gives
# byte-for-byte the same answer as these views without Django's URL resolver and middleware.


def ocsp_headers(der: bytes, *, cacheable: bool) -> dict[str, str]:
    """Content-Type and caching headers of an OCSP answer (RFC 5019 §6: GET answers may be cached)."""
    headers = {"Content-Type": "application/ocsp-response"}
    if cacheable and len(der) > 16:
        try:
            parsed = ocsp.load_der_ocsp_response(der)
            # A response carrying the client's nonce is for that client only.
            has_nonce = any(isinstance(ext.value, x509.OCSPNonce) for ext in parsed.extensions)
            if (
                parsed.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
                and parsed.next_update_utc
                and not has_nonce
            ):
                headers.update(
                    cache_headers(body=der, last_modified=parsed.this_update_utc, expires=parsed.next_update_utc)
                )
                return headers
        except ValueError:
            pass
    headers["Cache-Control"] = "no-store"
    return headers


def ocsp_post_answer(*, content_length: str | None, read: Callable[[int], bytes]) -> tuple[bytes, dict[str, str]]:
    """The answer to POST /pki/ocsp/: the body is read only when its declared length is acceptable."""
    try:
        length = int(content_length or 0)
    except ValueError:
        length = 0
    if length <= 0 or length > responder.MAX_REQUEST_BYTES:
        der = responder.MALFORMED_REQUEST
    else:
        der = services.ocsp_respond(request_der=read(length))
    return der, ocsp_headers(der, cacheable=False)


def ocsp_get_answer(encoded: str) -> tuple[bytes, dict[str, str]]:
    """The answer to GET /pki/ocsp/<base64>."""
    # RFC 6960 A.1: the URL-encoded base64 DER request; accept the URL-safe alphabet and missing padding too.
    text = encoded.strip().replace("-", "+").replace("_", "/").replace(" ", "+")
    try:
        request_der = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return responder.MALFORMED_REQUEST, ocsp_headers(responder.MALFORMED_REQUEST, cacheable=False)
    der = services.ocsp_respond(request_der=request_der)
    return der, ocsp_headers(der, cacheable=True)


def _response(answer: tuple[bytes, dict[str, str]]) -> HttpResponse:
    der, headers = answer
    return HttpResponse(der, headers=headers)


@csrf_exempt
@require_http_methods(["POST"])
def ocsp_post(request: HttpRequest) -> HttpResponse:
    return _response(ocsp_post_answer(content_length=request.META.get("CONTENT_LENGTH"), read=request.read))


@require_GET
def ocsp_get(request: HttpRequest, encoded: str) -> HttpResponse:
    return _response(ocsp_get_answer(encoded))
