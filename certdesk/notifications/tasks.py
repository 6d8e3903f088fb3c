from django_tasks import task

from certdesk.notifications.channels.sms import sms_backend


@task()
def sms_deliver(*, mobile: str, text: str, template: str, params: dict[str, str]) -> None:
    sms_backend().send(mobile=mobile, text=text, template=template, params=params)
