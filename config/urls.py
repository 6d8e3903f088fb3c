from django.contrib import admin
from django.urls import include, path
from django_otp.admin import OTPAdminSite

from certdesk.accounts.views import staff_login, staff_otp

# The admin asks for the same second factor as the console: a verified TOTP device.
admin.site.__class__ = OTPAdminSite

urlpatterns = [
    # First: OCSP requests are the hottest path and should resolve with the fewest pattern checks.
    path("pki/", include("certdesk.pki.urls")),
    path("", include("certdesk.portal.urls")),
    path("accounts/", include("certdesk.accounts.urls")),
    path("catalog/", include("certdesk.catalog.urls")),
    path("orders/", include("certdesk.orders.urls")),
    path("", include("certdesk.materials.urls")),
    path("", include("certdesk.fulfilment.urls")),
    path("", include("certdesk.invoices.urls")),
    path("", include("certdesk.notifications.urls")),
    path("api/", include("certdesk.api.urls")),
    path("", include("certdesk.payments.urls")),
    path("staff/admin/", admin.site.urls),
    path("staff/login/", staff_login, name="staff_login"),
    path("staff/otp/", staff_otp, name="staff_otp"),
    path("staff/", include("certdesk.review.urls")),
]
