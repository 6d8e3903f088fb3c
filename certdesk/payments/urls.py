from django.urls import path

from certdesk.payments import views

# Mounted at the site root: full prefixes here.
app_name = "payments"
urlpatterns = [
    path("orders/<str:number>/pay/", views.payment_page, name="pay"),
    path("orders/<str:number>/pay/status/", views.payment_status, name="status"),
    path("payments/callback/<slug:gateway>/", views.payment_callback, name="callback"),
    path("payments/sandbox/pay/<str:merchant_no>/", views.sandbox_pay, name="sandbox_pay"),
]
