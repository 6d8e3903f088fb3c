"""Work on a USB key through the agent: pairing, sessions, certificates onto the
key, confirmation, online unlock.

The order page shows a one-time code; the agent (on the issuer's station or the
customer's PC) trades it plus the plugged-in key's SN for a short-lived session
that may do exactly one operation on one order and one key. Every step can be
repeated after a crash or a lost connection without doing anything twice: the
RA's certificate record makes issuance idempotent, and confirmations check
what is already done.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from certdesk.accounts.models import User
from certdesk.core.choices import BusinessType
from certdesk.core.errors import DomainError, PermissionDenied
from certdesk.fulfilment.models import AgentPairing, AgentSession, KeyOperation
from certdesk.orders.models import Order, OrderStatus
from certdesk.orders.services import order_event_add, order_lock, order_transition
from certdesk.pki.types import RevocationReason
from certdesk.ra.models import CertificateRole, OrderCertificate
from certdesk.ra.services import ra_certificate_issue, ra_certificate_revoke, ra_certificates_installed, ra_roles_for
from certdesk.tokens.keymodels import key_unlock_method
from certdesk.tokens.models import UsbKey, UsbKeyStatus
from certdesk.tokens.selectors import usb_key_get
from certdesk.tokens.services import (
    so_pin_generate,
    usb_key_certificate_add,
    usb_key_certificate_remove,
    usb_key_mark_issued,
    usb_key_so_pin_confirm,
    usb_key_so_pin_release_once,
)

PAIRING_TTL = datetime.timedelta(minutes=10)
SESSION_TTL = datetime.timedelta(minutes=30)
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I

# Which operation an order needs, in which state.
_OPERATIONS = {
    (BusinessType.NEW, OrderStatus.PAID): KeyOperation.WRITE,
    (BusinessType.REISSUE, OrderStatus.PAID): KeyOperation.WRITE,
    (BusinessType.RENEW, OrderStatus.READY_TO_DOWNLOAD): KeyOperation.DOWNLOAD,
    (BusinessType.CHANGE, OrderStatus.READY_TO_DOWNLOAD): KeyOperation.DOWNLOAD,
    (BusinessType.UNLOCK, OrderStatus.READY_TO_UNLOCK): KeyOperation.UNLOCK,
}
_DONE = {
    KeyOperation.WRITE: OrderStatus.TO_SHIP,
    KeyOperation.DOWNLOAD: OrderStatus.COMPLETED,
    KeyOperation.UNLOCK: OrderStatus.COMPLETED,
}


def _digest(kind: str, value: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def key_operation_for(order: Order) -> KeyOperation | None:
    return _OPERATIONS.get((BusinessType(order.business_type), OrderStatus(order.status)))


@dataclass(frozen=True)
class PairingCode:
    code: str  # shown once, as ABCD-EFGH
    expires_at: datetime.datetime


@transaction.atomic
def agent_pairing_create(*, order: Order, actor: User) -> PairingCode:
    """A one-time code for the agent: issuers for writing new keys, the customer for their own key."""
    locked = order_lock(order_id=order.pk)
    operation = key_operation_for(locked)
    if operation is None:
        raise DomainError(
            _("订单当前状态为“%(s)s”，不需要操作 USB Key。") % {"s": locked.get_status_display()}, code="no_key_work"
        )
    if operation == KeyOperation.WRITE:
        if not actor.has_perm("orders.issue_order"):
            raise PermissionDenied(_("只有制证员可以为新 Key 写入证书。"), code="issuer_only")
    elif actor.pk != locked.owner_id:
        raise PermissionDenied(_("订单不存在。"), code="not_owner")
    if operation == KeyOperation.UNLOCK and key_unlock_method(locked.key_sn) != "online":
        raise DomainError(_("该型号 Key 不支持在线解锁，请联系客服远程协助。"), code="unlock_not_online")
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
    expires_at = timezone.now() + PAIRING_TTL
    AgentPairing.objects.create(
        order=locked, operation=operation, code_hmac=_digest("pair", raw), created_by=actor, expires_at=expires_at
    )
    order_event_add(order=locked, kind="agent_pairing", actor=actor, data={"operation": operation})
    return PairingCode(code=f"{raw[:4]}-{raw[4:]}", expires_at=expires_at)


@dataclass(frozen=True)
class OpenedSession:
    session: AgentSession
    token: str


def _key_for_session(order: Order, operation: KeyOperation, key_sn: str) -> UsbKey:
    key = usb_key_get(sn=key_sn)
    if key is None:
        raise DomainError(_("Key %(sn)s 不在本系统的 Key 库中。") % {"sn": key_sn}, code="key_unknown")
    if operation == KeyOperation.WRITE:
        # A retry after a crash may find the key already bound to this very order.
        if key.status != UsbKeyStatus.IN_STOCK and key.sn != order.key_sn:
            raise DomainError(
                _("Key %(sn)s 不是空白库存 Key（当前：%(s)s），请换一个新 Key。")
                % {"sn": key.sn, "s": key.get_status_display()},
                code="key_not_in_stock",
            )
    elif key.sn != order.key_sn:
        raise DomainError(
            _("插入的 Key（SN %(got)s）不是本订单的 Key（SN %(want)s），请插入正确的 Key。")
            % {"got": key.sn, "want": order.key_sn},
            code="key_mismatch",
        )
    return key


def agent_session_open(*, code: str, key_sn: str) -> OpenedSession:
    """Trade a pairing code and the plugged-in key's SN for a session token (once)."""
    raw = (code or "").strip().upper().replace("-", "").replace(" ", "")
    now = timezone.now()
    with transaction.atomic():
        pairing = AgentPairing.objects.select_for_update().filter(code_hmac=_digest("pair", raw)).first()
        if pairing is None or pairing.used_at is not None or pairing.expires_at <= now:
            raise DomainError(_("配对码无效、已使用或已过期，请在订单页面重新获取。"), code="pairing_invalid")
        pairing.used_at = now
        pairing.save(update_fields=["used_at"])
    # The code is spent even if the key is refused: a wrong key means a new code, not a guessing game.
    with transaction.atomic():
        order = order_lock(order_id=pairing.order_id)
        operation = KeyOperation(pairing.operation)
        if key_operation_for(order) != operation:
            raise DomainError(_("订单状态已变化，请刷新订单页面。"), code="order_changed")
        key = _key_for_session(order, operation, key_sn.strip())
        if operation == KeyOperation.WRITE and order.key_sn != key.sn:
            if OrderCertificate.objects.filter(order=order, status=OrderCertificate.Status.INSTALLED).exists():
                raise DomainError(_("该订单的证书已写入另一个 Key。"), code="already_written")
            Order.objects.filter(pk=order.pk).update(key_sn=key.sn)
            order.key_sn = key.sn
        token = secrets.token_urlsafe(32)
        session = AgentSession.objects.create(
            order=order,
            operation=operation,
            key_sn=key.sn,
            token_hmac=_digest("session", token),
            created_by=pairing.created_by,
            expires_at=now + SESSION_TTL,
        )
        order_event_add(order=order, kind="agent_paired", actor=pairing.created_by, data={"key_sn": key.sn})
    return OpenedSession(session=session, token=token)


def agent_session_get(*, token: str) -> AgentSession:
    session = (
        AgentSession.objects.select_related("order__certificate_type__sub_project__category__industry__region")
        .filter(token_hmac=_digest("session", token or ""))
        .first()
    )
    if session is None or session.expires_at <= timezone.now():
        raise DomainError(_("会话无效或已过期，请重新配对。"), code="session_invalid")
    return session


def _require(session: AgentSession, *operations: KeyOperation) -> Order:
    if session.operation not in operations:
        raise DomainError(_("本次配对不能执行此操作。"), code="wrong_operation")
    return session.order


ENC_POP_CONTEXT = b"certdesk-enc-pop/v1"


def enc_pop_message(*, order_number: str, key_sn: str, public_key_pem: str) -> bytes:
    """What the key's signing key signs to vouch for an encryption key made on the same key. An
    encryption key cannot sign (so it has no CSR); the message names the order and the key so the
    proof cannot be replayed for another one. The agent builds the same bytes (docs/api.md)."""
    try:
        public_key = serialization.load_pem_public_key(public_key_pem.encode())
    except (ValueError, UnsupportedAlgorithm):
        raise DomainError(_("公钥格式不正确（应为 PEM）。"), code="public_key_malformed") from None
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b"\n".join(
        [ENC_POP_CONTEXT, order_number.encode(), key_sn.encode(), hashlib.sha256(spki).hexdigest().encode()]
    )


def _enc_pop_verify(*, session: AgentSession, order: Order, public_key_pem: str, signature: bytes) -> None:
    message = enc_pop_message(order_number=order.number, key_sn=session.key_sn, public_key_pem=public_key_pem)
    signs = OrderCertificate.objects.filter(
        order=order,
        role=CertificateRole.SIGN,
        key_sn=session.key_sn,
        status__in=[OrderCertificate.Status.ISSUED, OrderCertificate.Status.INSTALLED],
    )
    if not signs:
        raise DomainError(_("请先为这把 Key 申请签名证书，再申请加密证书。"), code="sign_certificate_missing")
    for record in signs:
        signer = x509.load_pem_x509_certificate(record.certificate_pem.encode()).public_key()
        try:
            if isinstance(signer, ec.EllipticCurvePublicKey):
                signer.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            elif isinstance(signer, rsa.RSAPublicKey):
                signer.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
            else:
                continue
        except (InvalidSignature, ValueError):
            continue
        return
    raise DomainError(_("加密密钥的持有证明无效：须由本 Key 上的签名密钥签署。"), code="pop_invalid")


def agent_certificate_request(
    *,
    session: AgentSession,
    role: CertificateRole,
    csr_pem: str = "",
    public_key_pem: str = "",
    pop_signature: bytes = b"",
) -> OrderCertificate:
    """Issue (once) the `role` certificate for a key pair on the session's key: from a CSR, or, for
    the encryption pair (which cannot sign), from its public key plus a proof signed by the key's
    signing key, whose certificate this order issued first (`enc_pop_message`)."""
    order = _require(session, KeyOperation.WRITE, KeyOperation.DOWNLOAD)
    order.refresh_from_db()
    if key_operation_for(order) != session.operation:
        done = _DONE[KeyOperation(session.operation)]
        if order.status == done:
            existing = OrderCertificate.objects.filter(order=order, role=role, status="installed").first()
            if existing is not None:
                return existing  # a retry after the confirmation went through
        raise DomainError(_("订单状态已变化，请刷新订单页面。"), code="order_changed")
    if public_key_pem:
        if role != CertificateRole.ENC:
            raise DomainError(_("签名证书须以证书请求（CSR）申请。"), code="csr_required")
        _enc_pop_verify(session=session, order=order, public_key_pem=public_key_pem, signature=pop_signature)
    renewal_of = ""
    if order.business_type == BusinessType.RENEW:
        # Each role's new validity runs on from that role's current certificate on the key.
        current = _installed_on_key(key_sn=session.key_sn, exclude_order=order).filter(role=role).first()
        renewal_of = (current.serial or "") if current is not None else ""
    return ra_certificate_issue(
        order=order,
        role=role,
        csr_pem="" if public_key_pem else csr_pem,
        public_key_pem=public_key_pem,
        proof_of_possession_verified=bool(public_key_pem),
        key_sn=session.key_sn,
        actor=session.created_by,
        renewal_of=renewal_of,
    )


def agent_confirm(*, session: AgentSession, serials: list[str]) -> Order:
    """The agent has written these certificates to the key: finish the order's key step."""
    order = _require(session, KeyOperation.WRITE, KeyOperation.DOWNLOAD)
    operation = KeyOperation(session.operation)
    with transaction.atomic():
        order = order_lock(order_id=order.pk)
        if order.status == _DONE[operation]:
            return order  # already confirmed: a retry
        if key_operation_for(order) != operation:
            raise DomainError(_("订单状态已变化，请刷新订单页面。"), code="order_changed")
        records = ra_certificates_installed(order=order, serials=serials, actor=session.created_by)
        missing = {role.value for role in ra_roles_for(order)} - {record.role for record in records}
        if missing:
            raise DomainError(
                _("还缺少%(r)s，请完成后再确认。")
                % {"r": "、".join(str(CertificateRole(m).label) for m in sorted(missing))},
                code="roles_missing",
            )
        key = usb_key_get(sn=session.key_sn)
        assert key is not None
        actor = session.created_by.mobile
        if operation == KeyOperation.WRITE and key.status == UsbKeyStatus.IN_STOCK:
            key = usb_key_mark_issued(key=key, owner_uscc=order.cert_uscc, actor=actor)
        for record in records:
            assert record.serial is not None and record.not_after is not None
            usb_key_certificate_add(
                key=key, serial_hex=record.serial, role=record.role, not_after=record.not_after, actor=actor
            )
        replaced = (
            list(_installed_on_key(key_sn=key.sn, exclude_order=order)) if operation == KeyOperation.DOWNLOAD else []
        )
        for old in replaced:
            assert old.serial is not None
            usb_key_certificate_remove(key=key, serial_hex=old.serial, actor=actor)
        session.finished_at = timezone.now()
        session.save(update_fields=["finished_at"])
        kind = "key_written" if operation == KeyOperation.WRITE else "certificate_downloaded"
        order = order_transition(
            order=order,
            to_status=_DONE[operation],
            actor=session.created_by,
            kind=kind,
            data={"key_sn": key.sn, "serials": [r.serial for r in records]},
        )
        for old in replaced:
            assert old.serial is not None
            if order.business_type == BusinessType.CHANGE:
                # The old subject data is no longer true: its certificates are withdrawn.
                ra_certificate_revoke(serial=old.serial, reason=RevocationReason.SUPERSEDED, actor=session.created_by)
            else:
                # A renewal's old certificates simply run out; they are no longer on the key.
                OrderCertificate.objects.filter(pk=old.pk).update(status=OrderCertificate.Status.SUPERSEDED)
    return order


def _installed_on_key(*, key_sn: str, exclude_order: Order) -> QuerySet[OrderCertificate]:
    """Certificates an earlier order put on this key and that are still there."""
    return (
        OrderCertificate.objects.filter(key_sn=key_sn, status=OrderCertificate.Status.INSTALLED)
        .exclude(order=exclude_order)
        .order_by("-installed_at", "-id")
    )


@dataclass(frozen=True)
class UnlockPins:
    so_pin: str
    new_so_pin: str


def agent_unlock_start(*, session: AgentSession) -> UnlockPins:
    """Release the key's admin PIN once, with the fresh one the agent must set in its place."""
    order = _require(session, KeyOperation.UNLOCK)
    order.refresh_from_db()
    if key_operation_for(order) != KeyOperation.UNLOCK:
        raise DomainError(_("订单状态已变化，请刷新订单页面。"), code="order_changed")
    if key_unlock_method(session.key_sn) != "online":
        raise DomainError(_("该型号 Key 不支持在线解锁。"), code="unlock_not_online")
    key = usb_key_get(sn=session.key_sn)
    assert key is not None
    fresh = so_pin_generate()
    with transaction.atomic():
        current = usb_key_so_pin_release_once(key=key, fresh_so_pin=fresh, actor=session.created_by.mobile)
        order_event_add(order=order, kind="unlock_started", actor=session.created_by, data={"key_sn": key.sn})
    return UnlockPins(so_pin=current, new_so_pin=fresh)


def agent_unlock_finish(*, session: AgentSession, ok: bool, error: str = "") -> Order:
    """The agent reports the outcome. Success completes the order; failure hands it to support."""
    order = _require(session, KeyOperation.UNLOCK)
    with transaction.atomic():
        order = order_lock(order_id=order.pk)
        if order.status in (OrderStatus.COMPLETED, OrderStatus.REMOTE_ASSISTANCE):
            return order
        key = usb_key_get(sn=session.key_sn)
        assert key is not None
        session.finished_at = timezone.now()
        session.save(update_fields=["finished_at"])
        if ok:
            usb_key_so_pin_confirm(key=key, actor=session.created_by.mobile)
            return order_transition(
                order=order,
                to_status=OrderStatus.COMPLETED,
                actor=session.created_by,
                kind="unlocked",
                expected_from=frozenset({OrderStatus.READY_TO_UNLOCK}),
            )
        # The key may now hold either admin PIN: support takes over (the ticket carries the error).
        return order_transition(
            order=order,
            to_status=OrderStatus.REMOTE_ASSISTANCE,
            actor=session.created_by,
            kind="unlock_failed",
            note=error[:500],
            expected_from=frozenset({OrderStatus.READY_TO_UNLOCK}),
        )
