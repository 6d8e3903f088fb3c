from django.urls import path, re_path

from certdesk.pki import views

app_name = "pki"
urlpatterns = [
    re_path(r"^ca/(?P<role>root|issuing)\.crt$", views.ca_certificate, name="ca-certificate"),
    re_path(r"^crl/(?P<role>root|issuing)\.crl$", views.crl, name="crl"),
    path("ocsp/", views.ocsp_post, name="ocsp"),
    re_path(r"^ocsp/(?P<encoded>.+)$", views.ocsp_get, name="ocsp-get"),
]
