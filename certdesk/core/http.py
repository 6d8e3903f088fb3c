"""Small request helpers shared by views."""

from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    # Behind the proxy named in deployment docs, REMOTE_ADDR is set by it (one hop).
    return request.META.get("REMOTE_ADDR", "") or "unknown"
