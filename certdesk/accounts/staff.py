"""The staff entry point: its own login page, and a decorator for staff views.

Customers (and staff without the permission) get 404 from staff pages, so the
pages' existence is not revealed; anonymous visitors are sent to the staff login.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.urls import reverse

from certdesk.accounts.otp import staff_otp_required
from certdesk.accounts.roles import staff_permissions_preload

View = Callable[..., HttpResponseBase]


def staff_required(permission: str | None = None) -> Callable[[View], View]:
    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse("staff_login"))
            if not user.is_staff:
                raise Http404
            staff_permissions_preload(user)  # one query for this check and the menu's
            if permission is not None and not user.has_perm(permission):
                raise Http404
            # OTPMiddleware adds is_verified() to the request's user.
            if staff_otp_required(user) and not user.is_verified():  # type: ignore[attr-defined]
                return redirect_to_login(request.get_full_path(), reverse("staff_otp"))
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
