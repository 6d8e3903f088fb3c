from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

# The phone upload page may use the camera; nothing else needs device access.
PERMISSIONS_POLICY = "camera=(self), microphone=(), geolocation=(), payment=()"


class SecurityHeadersMiddleware(MiddlewareMixin):
    """Headers Django does not set itself: CSP and a restrictive Permissions-Policy. Only a response
    half, as Django's own security middleware has: the OCSP service applies these halves without
    Django's handler (certdesk.pki.asgi)."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
