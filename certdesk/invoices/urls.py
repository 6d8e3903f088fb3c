from django.urls import path

from certdesk.invoices import views

app_name = "invoices"
urlpatterns = [
    path("account/invoices/", views.invoice_list, name="list"),
    path("account/invoices/<str:number>/pdf/", views.invoice_pdf, name="pdf"),
    path("staff/invoices/", views.staff_invoice_list, name="staff_list"),
    path("staff/invoices/<str:number>/resend/", views.staff_invoice_resend, name="staff_resend"),
]
