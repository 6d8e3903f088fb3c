from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("certdesk.portal.urls")),
    path("accounts/", include("certdesk.accounts.urls")),
    path("catalog/", include("certdesk.catalog.urls")),
    path("orders/", include("certdesk.orders.urls")),
    path("", include("certdesk.materials.urls")),
    path("", include("certdesk.notifications.urls")),
    path("pki/", include("certdesk.pki.urls")),
    path("staff/admin/", admin.site.urls),
]
