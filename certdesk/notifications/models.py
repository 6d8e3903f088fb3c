"""Notifications: the on-site message (站内信) and its per-channel outbox.

`Notification` is what the customer sees in the message centre and holds the
rendered text once. `OutboxMessage` is one row per channel (SMS, e-mail,
WeChat) that still has to reach the provider; its state machine is
pending → sending → sent | failed, driven only by `services`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    SMS = "sms", _("短信")
    EMAIL = "email", _("电子邮件")
    WECHAT = "wechat", _("微信公众号")


class NotificationEvent(models.TextChoices):
    SUBMITTED = "submitted", _("订单已提交")
    APPROVED_PAY = "approved_pay", _("审核通过，待付款")
    APPROVED = "approved", _("审核通过")
    REJECTED = "rejected", _("审核不通过")
    PAID = "paid", _("付款成功")
    SHIPPED = "shipped", _("已发货")
    READY_TO_PICKUP = "ready_to_pickup", _("待自提")
    READY_TO_DOWNLOAD = "ready_to_download", _("待下载证书")
    READY_TO_UNLOCK = "ready_to_unlock", _("待在线解锁")
    REMOTE_ASSISTANCE = "remote_assistance", _("远程协助解锁")
    COMPLETED = "completed", _("业务办结")
    REFUNDED = "refunded", _("已退款")
    EXPIRING = "expiring", _("证书即将到期")
    INVOICE_ISSUED = "invoice_issued", _("发票已开具")


class Notification(models.Model):
    """One event told to one user: the 站内信, and the text every channel sends."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(_("事件"), max_length=32, choices=NotificationEvent.choices)
    title = models.CharField(_("标题"), max_length=100)
    body = models.TextField(_("内容"))
    link = models.CharField(_("链接"), max_length=500, blank=True)
    # The caller's values, kept so channels with their own layout (WeChat fields) can use them.
    context = models.JSONField(default=dict, blank=True)
    dedupe_key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(_("阅读时间"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"])]
        verbose_name = _("站内信")
        verbose_name_plural = _("站内信")

    def __str__(self) -> str:
        return self.title

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class NotificationAttachment(models.Model):
    """A file sent with the e-mail of a notification (e.g. the invoice PDF)."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="attachments")
    name = models.CharField(max_length=200)
    mimetype = models.CharField(max_length=100)
    content = models.BinaryField()

    class Meta:
        ordering = ["id"]


class OutboxStatus(models.TextChoices):
    PENDING = "pending", _("待发送")
    SENDING = "sending", _("发送中")
    SENT = "sent", _("已发送")
    FAILED = "failed", _("发送失败")


class OutboxMessage(models.Model):
    """One notification on its way through one channel."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="outbox")
    channel = models.CharField(_("渠道"), max_length=16, choices=Channel.choices)
    recipient = models.CharField(_("接收方"), max_length=254)
    dedupe_key = models.CharField(max_length=220, unique=True)
    status = models.CharField(
        _("状态"), max_length=10, choices=OutboxStatus.choices, default=OutboxStatus.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(_("尝试次数"), default=0)
    # When the sweep should (re-)dispatch a pending row.
    next_attempt_at = models.DateTimeField(db_index=True)
    # Bumped by every dispatch and every claim: a queued task carries the number
    # it was dispatched with, so stale or duplicate tasks find nothing to claim.
    dispatch_no = models.PositiveIntegerField(default=0)
    # Set by the claim; only the claimer may mark the row sent.
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True, db_index=True)
    sent_at = models.DateTimeField(_("发送时间"), null=True, blank=True)
    provider_ref = models.CharField(_("服务商消息号"), max_length=100, blank=True)
    last_error = models.TextField(_("最近错误"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
        verbose_name = _("待发消息")
        verbose_name_plural = _("待发消息")

    def __str__(self) -> str:
        return self.dedupe_key


class NotificationPreference(models.Model):
    """Which channels a user wants, and the WeChat openid bound to the account."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    sms_enabled = models.BooleanField(_("短信"), default=True)
    email_enabled = models.BooleanField(_("电子邮件"), default=True)
    wechat_enabled = models.BooleanField(_("微信公众号"), default=True)
    wechat_openid = models.CharField(_("微信 openid"), max_length=64, blank=True, db_index=True)
    wechat_bound_at = models.DateTimeField(null=True, blank=True)
    # Part of every binding token: bumped on bind and unbind, so a token works once.
    wechat_binding_version = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("通知设置")
        verbose_name_plural = _("通知设置")


class WechatAccessToken(models.Model):
    """The official account's access token, shared by every worker (WeChat caps
    how often it may be fetched, and each fetch retires the previous one)."""

    app_id = models.CharField(max_length=64, unique=True)
    token = models.CharField(max_length=600)
    expires_at = models.DateTimeField()


class DemoInboxMessage(models.Model):
    """What a console backend 'sent', kept only in demo mode for /demo/inbox/."""

    channel = models.CharField(max_length=16, choices=Channel.choices)
    recipient = models.CharField(max_length=254, db_index=True)
    subject = models.CharField(max_length=255, blank=True)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("演示收件箱消息")
        verbose_name_plural = _("演示收件箱消息")
