from django.urls import path

from certdesk.fulfilment import views

app_name = "fulfilment"
urlpatterns = [
    path("staff/fulfilment/", views.queue, name="queue"),
    path("staff/fulfilment/<str:number>/ship/", views.ship, name="ship"),
    path("staff/fulfilment/<str:number>/pickup/", views.ready_for_pickup, name="pickup"),
    path("staff/fulfilment/<str:number>/hand-over/", views.hand_over, name="hand_over"),
    path("staff/fulfilment/<str:number>/station/", views.station, name="station"),
    path("staff/support/", views.support_queue, name="support"),
    path("staff/support/<str:number>/done/", views.support_done, name="support_done"),
    path("orders/<str:number>/received/", views.confirm_receipt, name="confirm_receipt"),
    path("orders/<str:number>/key/", views.key_pairing, name="key_pairing"),
]
