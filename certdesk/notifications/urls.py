from django.urls import path

from certdesk.notifications import views

app_name = "notifications"
urlpatterns = [path("demo/inbox/", views.demo_inbox, name="demo_inbox")]
