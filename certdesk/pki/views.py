"""Publication endpoints: CA certificates, CRLs, OCSP. They parse and call; nothing more."""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib

from cryptography import x509
from cryptography.x509 import ocsp
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.http import http_date
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from certdesk.pki import responder, selectors, services
from certdesk.pki.errors import CaNotInitialised


def _cacheable(
    response: HttpResponse, *, body: bytes, last_modified: datetime.datetime, expires: datetime.datetime
) -> HttpResponse:
    now = timezone.now()
    max_age = max(0, int((expires - now).total_seconds()))
    response["Cache-Control"] = f"public, max-age={max_age}, no-transform, must-revalidate"
    response["Last-Modified"] = http_date(last_modified.timestamp())
    response["Expires"] = http_date(expires.timestamp())
    response["ETag"] = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return response


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
    response = HttpResponse(der, content_type="application/pkix-crl")
    response["Content-Disposition"] = f'inline; filename="{role}.crl"'
    # A revocation publishes a new CRL at once; let caches revalidate well before nextUpdate.
    expires = min(latest.next_update, timezone.now() + datetime.timedelta(hours=1))
    return _cacheable(response, body=der, last_modified=latest.this_update, expires=expires)


def _ocsp_http(der: bytes, *, cacheable: bool) -> HttpResponse:
    response = HttpResponse(der, content_type="application/ocsp-response")
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
                return _cacheable(
                    response, body=der, last_modified=parsed.this_update_utc, expires=parsed.next_update_utc
                )
        except ValueError:
            pass
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt
@require_http_methods(["POST"])
def ocsp_post(request: HttpRequest) -> HttpResponse:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0 or length > responder.MAX_REQUEST_BYTES:
        return _ocsp_http(responder.MALFORMED_REQUEST, cacheable=False)
    return _ocsp_http(services.ocsp_respond(request_der=request.body), cacheable=False)


@require_GET
def ocsp_get(request: HttpRequest, encoded: str) -> HttpResponse:
    # RFC 6960 A.1: the URL-encoded base64 DER request; accept the URL-safe alphabet and missing padding too.
    text = encoded.strip().replace("-", "+").replace("_", "/").replace(" ", "+")
    try:
        der = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return _ocsp_http(responder.MALFORMED_REQUEST, cacheable=False)
    body = services.ocsp_respond(request_der=der)
    return _ocsp_http(body, cacheable=True)
