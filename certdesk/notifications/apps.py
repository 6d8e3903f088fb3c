import datetime

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "certdesk.notifications"
    label = "notifications"
    verbose_name = "消息通知"

    def ready(self) -> None:
        from certdesk.core.periodic import periodic_register
        from certdesk.notifications.tasks import certificate_expiry_remind_task, outbox_retry_task

        periodic_register(outbox_retry_task, every=datetime.timedelta(seconds=30))
        periodic_register(certificate_expiry_remind_task, every=datetime.timedelta(days=1))
