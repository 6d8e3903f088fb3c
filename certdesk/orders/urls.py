from django.urls import path

from certdesk.orders import views

app_name = "orders"
urlpatterns = [
    path("", views.order_list, name="list"),
    path("new/", views.order_start, name="create"),
    path("start/<slug:business>/", views.order_start_follow_up, name="start"),
    path("<str:number>/", views.order_detail, name="detail"),
    path("<str:number>/info/", views.order_info, name="info"),
    path("<str:number>/print/", views.order_print, name="print"),
    path("<str:number>/form.pdf", views.order_form_pdf, name="form_pdf"),
    path("<str:number>/upload/", views.order_upload, name="upload"),
    path("<str:number>/submit/", views.order_submit_view, name="submit"),
    path("<str:number>/cancel/", views.order_cancel_view, name="cancel"),
]
