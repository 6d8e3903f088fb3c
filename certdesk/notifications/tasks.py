"""Background work of the notifications app. The functions live in services;
these are the task entry points (imported lazily there to avoid an import cycle)."""

from django_tasks import task

from certdesk.notifications.channels.sms import sms_backend


@task()
def sms_deliver(*, mobile: str, text: str, template: str, params: dict[str, str]) -> None:
    sms_backend().send(mobile=mobile, text=text, template=template, params=params)


@task()
def outbox_deliver_task(*, outbox_id: int, dispatch_no: int) -> str:
    from certdesk.notifications.services import outbox_deliver

    status = outbox_deliver(outbox_id=outbox_id, dispatch_no=dispatch_no)
    return status.value if status else "skipped"


@task()
def outbox_retry_task() -> int:
    from certdesk.notifications.services import outbox_retry

    return outbox_retry()


@task()
def certificate_expiry_remind_task() -> int:
    from certdesk.notifications.services import certificate_expiry_remind

    return certificate_expiry_remind()
