from django.urls import path, re_path

from certdesk.api import views

app_name = "api"
urlpatterns = [
    path("agent/v1/sessions", views.session_open, name="agent-sessions"),
    path("agent/v1/session", views.session_detail, name="agent-session"),
    path("agent/v1/certificates", views.certificate_request, name="agent-certificates"),
    path("agent/v1/confirm", views.confirm, name="agent-confirm"),
    path("agent/v1/unlock/start", views.unlock_start, name="agent-unlock-start"),
    path("agent/v1/unlock/finish", views.unlock_finish, name="agent-unlock-finish"),
    path("agent/v1/openapi.json", views.openapi, name="agent-openapi"),
    # Anything else under the API answers in JSON too, not with the portal's HTML 404 page.
    re_path(r"^agent/(?P<rest>.*)$", views.not_found),
]
