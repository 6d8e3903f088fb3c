from django.contrib import admin

from certdesk.notifications.models import DemoInboxMessage


@admin.register(DemoInboxMessage)
class DemoInboxMessageAdmin(admin.ModelAdmin):
    list_display = ("created_at", "channel", "recipient", "subject")
    list_filter = ("channel",)
