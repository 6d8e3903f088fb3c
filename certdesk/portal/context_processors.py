from typing import Any

from django.conf import settings
from django.http import HttpRequest


def portal(request: HttpRequest) -> dict[str, Any]:
    return {"demo_mode": settings.DEMO_MODE, "site_name": "证书自助办理平台"}
