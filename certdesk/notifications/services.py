from __future__ import annotations

from functools import partial

from django.db import transaction

from certdesk.notifications.tasks import sms_deliver


def sms_send(*, mobile: str, text: str, template: str, params: dict[str, str]) -> None:
    """Hand an SMS to the worker once the caller's transaction commits."""
    transaction.on_commit(partial(sms_deliver.enqueue, mobile=mobile, text=text, template=template, params=params))
