from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from certdesk.notifications.selectors import demo_inbox_list


def demo_inbox(request: HttpRequest) -> HttpResponse:
    if not settings.DEMO_MODE:
        raise Http404
    recipient = request.GET.get("to", "").strip()[:254]
    return render(
        request,
        "notifications/demo_inbox.html",
        {"inbox": demo_inbox_list(recipient=recipient), "recipient": recipient},
    )
