from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from certdesk.core.choices import BUSINESS_TYPE_DESCRIPTIONS, BusinessType


def home(request: HttpRequest) -> HttpResponse:
    tiles = [
        {"code": business.value, "name": business.label, "description": BUSINESS_TYPE_DESCRIPTIONS[business]}
        for business in BusinessType
    ]
    return render(request, "portal/home.html", {"tiles": tiles})
