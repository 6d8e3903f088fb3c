from django.urls import path

from certdesk.materials import views

app_name = "materials"
urlpatterns = [
    path("orders/<str:number>/upload/<slug:kind_code>/", views.material_upload, name="upload"),
    path("orders/<str:number>/upload/<slug:kind_code>/slot/", views.material_slot, name="slot"),
    path("orders/<str:number>/upload/<slug:kind_code>/file/", views.material_file, name="file"),
    path("orders/<str:number>/upload/<slug:kind_code>/qr/", views.material_phone_qr, name="phone_qr"),
    path("m/<str:token>/", views.material_phone_upload, name="phone"),
]
