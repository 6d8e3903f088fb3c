from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from certdesk.accounts.models import User
from certdesk.notifications.models import (
    DemoInboxMessage,
    Notification,
    NotificationPreference,
    OutboxMessage,
    OutboxStatus,
)
from certdesk.notifications.services import outbox_requeue


@admin.register(DemoInboxMessage)
class DemoInboxMessageAdmin(admin.ModelAdmin):
    list_display = ("created_at", "channel", "recipient", "subject")
    list_filter = ("channel",)


class OutboxInline(admin.TabularInline):
    model = OutboxMessage
    fields = ("channel", "recipient", "status", "attempts", "next_attempt_at", "sent_at", "last_error")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "user", "event", "title", "read_at")
    list_filter = ("event",)
    search_fields = ("user__mobile", "dedupe_key", "title")
    readonly_fields = ("user", "event", "title", "body", "link", "context", "dedupe_key", "created_at", "read_at")
    inlines = [OutboxInline]


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ("created_at", "channel", "recipient", "status", "attempts", "next_attempt_at", "sent_at")
    list_filter = ("status", "channel")
    search_fields = ("recipient", "dedupe_key")
    readonly_fields = [field.name for field in OutboxMessage._meta.fields]
    actions = ["requeue"]

    @admin.action(description="重新发送所选的失败消息")
    def requeue(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        assert isinstance(request.user, User)
        ids = list(queryset.filter(status=OutboxStatus.FAILED).values_list("pk", flat=True))
        count = outbox_requeue(outbox_ids=ids, actor=request.user)
        self.message_user(request, f"已重新排队 {count} 条消息。", messages.SUCCESS)


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "sms_enabled", "email_enabled", "wechat_enabled", "wechat_bound_at")
    search_fields = ("user__mobile",)
    readonly_fields = ("wechat_openid", "wechat_bound_at", "wechat_binding_version")
