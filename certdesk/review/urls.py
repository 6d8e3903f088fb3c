from django.urls import path

from certdesk.review import views

app_name = "review"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("review/", views.queue, name="queue"),
    path("review/<str:number>/", views.review_page, name="order"),
    path("review/<str:number>/claim/", views.claim, name="claim"),
    path("review/<str:number>/release/", views.release, name="release"),
    path("review/<str:number>/approve/", views.approve, name="approve"),
    path("review/<str:number>/reject/", views.reject, name="reject"),
    path("orders/<str:number>/form.pdf", views.form_pdf, name="form_pdf"),
    path("orders/<str:number>/files/<slug:kind_code>/", views.material_file, name="file"),
]
