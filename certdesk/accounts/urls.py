from django.urls import path

from certdesk.accounts import views

app_name = "accounts"
urlpatterns = [
    path("register/", views.register, name="register"),
    path("login/", views.login_password, name="login"),
    path("login/sms/", views.login_sms, name="login_sms"),
    path("logout/", views.logout_view, name="logout"),
    path("password/reset/", views.password_reset, name="password_reset"),
]
