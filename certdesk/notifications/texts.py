"""Every text a notification sends, in one place.

Each event has a title (站内信 title, e-mail subject), a body (站内信, SMS,
e-mail) and the values of its WeChat template fields. Placeholders are
`str.format` fields filled from the caller's context; a missing one is a
programming error and is refused before anything is stored.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from certdesk.notifications.models import NotificationEvent


@dataclass(frozen=True)
class EventText:
    title: str
    body: str
    # Values of the WeChat template fields, in order (keyword1, keyword2, …).
    wechat: tuple[str, ...]


_ORDER = "您的{business_type}订单{order_number}"

TEXTS: dict[NotificationEvent, EventText] = {
    NotificationEvent.SUBMITTED: EventText(
        title="订单已提交",
        body=_ORDER + "已提交，审核一般1个工作日内完成，审核结果将及时通知您。",
        wechat=("{order_number}", "已提交，待审核", "审核一般1个工作日内完成"),
    ),
    NotificationEvent.APPROVED_PAY: EventText(
        title="审核通过，请付款",
        body=_ORDER + "已审核通过，应付金额{amount}元。请登录证书自助办理平台，"
        "在“订单查询”中点击“付款”，使用微信或支付宝扫码支付。",
        wechat=("{order_number}", "审核通过，请付款", "{amount}元"),
    ),
    NotificationEvent.APPROVED: EventText(
        title="审核通过",
        body=_ORDER + "已审核通过，本业务无需付款，我们将尽快为您办理。",
        wechat=("{order_number}", "审核通过", "无需付款，正在办理"),
    ),
    NotificationEvent.REJECTED: EventText(
        title="审核不通过",
        body=_ORDER + "审核不通过，原因：{reasons}。请登录证书自助办理平台修改资料后重新提交。",
        wechat=("{order_number}", "审核不通过", "{reasons}"),
    ),
    NotificationEvent.PAID: EventText(
        title="付款成功",
        body=_ORDER + "已付款{amount}元，我们将尽快为您办理。",
        wechat=("{order_number}", "付款成功", "{amount}元"),
    ),
    NotificationEvent.SHIPPED: EventText(
        title="证书已发货",
        body=_ORDER + "的证书已由{courier}寄出，运单号{tracking_number}，请注意查收。",
        wechat=("{order_number}", "已发货", "{courier} {tracking_number}"),
    ),
    NotificationEvent.READY_TO_PICKUP: EventText(
        title="证书可以领取",
        body=_ORDER + "的证书已制作完成，请凭取件码{pickup_code}到{pickup_address}领取。",
        wechat=("{order_number}", "待自提", "取件码{pickup_code}"),
    ),
    NotificationEvent.READY_TO_DOWNLOAD: EventText(
        title="证书待下载",
        body=_ORDER + "已可下载新证书，请插入UKey登录证书自助办理平台，在订单详情中点击“下载证书”，将新证书写入UKey。",
        wechat=("{order_number}", "待下载证书", "请插入UKey登录平台下载"),
    ),
    NotificationEvent.READY_TO_UNLOCK: EventText(
        title="可以在线解锁",
        body=_ORDER + "已审核通过，请插入UKey登录证书自助办理平台，按提示在线重置PIN码。",
        wechat=("{order_number}", "待解锁", "请插入UKey登录平台解锁"),
    ),
    NotificationEvent.REMOTE_ASSISTANCE: EventText(
        title="远程协助解锁",
        body=_ORDER + "已审核通过，您的UKey需由技术支持人员远程协助解锁，工作人员将与您联系，请保持电话畅通。",
        wechat=("{order_number}", "远程协助解锁", "技术支持将与您联系"),
    ),
    NotificationEvent.COMPLETED: EventText(
        title="业务已办结",
        body=_ORDER + "已办结，感谢您使用证书自助办理平台。",
        wechat=("{order_number}", "已办结", "感谢您的使用"),
    ),
    NotificationEvent.REFUNDED: EventText(
        title="退款成功",
        body=_ORDER + "已退款{amount}元，款项将按原支付渠道退回。",
        wechat=("{order_number}", "已退款", "{amount}元"),
    ),
    NotificationEvent.EXPIRING: EventText(
        title="证书即将到期",
        body="您在订单{order_number}中办理的数字证书（序列号{serial}）将于{not_after}到期，还有{days}天。"
        "请及时登录证书自助办理平台办理证书更新，以免影响使用。",
        wechat=("{order_number}", "{days}天后到期", "{not_after}"),
    ),
    NotificationEvent.INVOICE_ISSUED: EventText(
        title="发票已开具",
        body=_ORDER + "的发票已开具，已发送至您填写的邮箱，也可在“我的发票”中下载。",
        wechat=("{order_number}", "发票已开具", "请登录平台查看"),
    ),
}


class NotificationContextError(ValueError):
    """The caller left out a value the event's text needs."""


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def event_required_keys(event: NotificationEvent) -> set[str]:
    text = TEXTS[event]
    return set().union(_fields(text.title), _fields(text.body), *(_fields(value) for value in text.wechat))


def event_render(*, event: NotificationEvent, context: dict[str, str]) -> tuple[str, str]:
    """(title, body) of the event with the context filled in."""
    missing = event_required_keys(event) - context.keys()
    if missing:
        raise NotificationContextError(f"notification {event.value!r} needs context keys: {sorted(missing)}")
    text = TEXTS[event]
    return text.title.format_map(context), text.body.format_map(context)


def event_wechat_values(*, event: NotificationEvent, context: dict[str, str]) -> list[str]:
    return [value.format_map(context) for value in TEXTS[event].wechat]
