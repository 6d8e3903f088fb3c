from django.urls import path

from certdesk.notifications import views

app_name = "notifications"
urlpatterns = [
    path("demo/inbox/", views.demo_inbox, name="demo_inbox"),
    path("account/notifications/", views.preferences, name="preferences"),
    path("account/notifications/wechat/qrcode/", views.wechat_qrcode, name="wechat_qrcode"),
    path("account/notifications/wechat/unbind/", views.wechat_unbind_view, name="wechat_unbind"),
    path("account/notifications/wechat/demo-bind/", views.wechat_demo_bind, name="wechat_demo_bind"),
    path("account/messages/", views.message_list, name="message_list"),
    path("account/messages/read-all/", views.message_read_all, name="message_read_all"),
    path("account/messages/<int:pk>/", views.message_detail, name="message_detail"),
    path("wechat/oauth/callback/", views.wechat_oauth_callback, name="wechat_oauth_callback"),
    path("wechat/callback/", views.wechat_callback, name="wechat_callback"),
]
