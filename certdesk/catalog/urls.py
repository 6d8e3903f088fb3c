from django.urls import path

from certdesk.catalog import views

app_name = "catalog"
urlpatterns = [path("select/", views.project_select, name="select")]
