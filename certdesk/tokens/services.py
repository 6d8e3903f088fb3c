"""Writes to the key inventory. Every change is under a row lock and leaves an audit record;
no audit record, log line or exception message ever carries a PIN."""

from __future__ import annotations

import datetime
import re
import secrets
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from certdesk.audit.services import audit_log
from certdesk.core.errors import DomainError, InvalidTransition
from certdesk.core.sealing import seal, unseal
from certdesk.core.validators import check_uscc
from certdesk.tokens.keymodels import key_model_info
from certdesk.tokens.models import UsbKey, UsbKeyCertificate, UsbKeyCertificateRole, UsbKeyStatus

SN_RE = re.compile(r"^[0-9A-Za-z]{6,32}$")
PIN_ALPHABET = frozenset(string.ascii_letters + string.digits + string.punctuation)
SO_PIN_MIN, SO_PIN_MAX = 6, 32  # what vendors ship; the ones we generate have 16
USER_PIN_MIN, USER_PIN_MAX = 6, 16
GENERATED_SO_PIN_LENGTH = 16
_GENERATED_ALPHABET = string.ascii_letters + string.digits


def so_pin_generate() -> str:
    """A fresh administrator PIN: 16 letters and digits (~95 bits)."""
    return "".join(secrets.choice(_GENERATED_ALPHABET) for _ in range(GENERATED_SO_PIN_LENGTH))


def _sn_check(sn: str) -> str:
    value = str(sn).strip()
    if not SN_RE.match(value):
        raise DomainError(_("序列号“%(sn)s”无效：应为 6–32 位字母或数字。") % {"sn": value[:40]}, code="sn_invalid")
    return value


def _pin_check(pin: str, *, lo: int, hi: int, what: str) -> str:
    if not lo <= len(pin) <= hi:
        raise DomainError(_("%(what)s应为 %(lo)d–%(hi)d 位。") % {"what": what, "lo": lo, "hi": hi}, code="pin_invalid")
    if not set(pin) <= PIN_ALPHABET:
        raise DomainError(_("%(what)s只能包含字母、数字和英文标点。") % {"what": what}, code="pin_invalid")
    return pin


def _uscc_check(uscc: str) -> str:
    try:
        return check_uscc(uscc)
    except ValidationError as exc:
        raise DomainError(" ".join(exc.messages), code="uscc_invalid") from None


def _lock(key: UsbKey) -> UsbKey:
    return UsbKey.objects.select_for_update().get(pk=key.pk)


def _audit(key: UsbKey, action: str, actor: str, **data: object) -> None:
    audit_log(action=f"usb_key.{action}", actor=actor, object_type="usb_key", object_id=key.sn, data=data)


# ---- creating keys ------------------------------------------------------------------------------


@transaction.atomic
def usb_key_create(
    *,
    sn: str,
    so_pin: str,
    model: str = "",
    vendor: str = "",
    initial_user_pin: str = "",
    emulated: bool = False,
    actor: str = "",
) -> UsbKey:
    """Put one key into stock. Model and vendor default from the SN prefix."""
    sn = _sn_check(sn)
    _pin_check(so_pin, lo=SO_PIN_MIN, hi=SO_PIN_MAX, what=_("管理员 PIN"))
    if initial_user_pin:
        _pin_check(initial_user_pin, lo=USER_PIN_MIN, hi=USER_PIN_MAX, what=_("初始用户 PIN"))
    info = key_model_info(sn)
    model = model.strip() or (info.model if info else "")
    vendor = vendor.strip() or (info.vendor if info else "")
    if not model:
        raise DomainError(_("无法从序列号识别型号，请填写型号。"), code="model_unknown")
    if UsbKey.objects.filter(sn=sn).exists():
        raise DomainError(_("序列号 %(sn)s 已在库存中。") % {"sn": sn}, code="sn_duplicate")
    try:
        with transaction.atomic():
            key = UsbKey.objects.create(
                sn=sn,
                model=model[:64],
                vendor=vendor[:64],
                so_pin_sealed=seal(so_pin),
                initial_user_pin_sealed=seal(initial_user_pin) if initial_user_pin else "",
                emulated=emulated,
                status_changed_at=timezone.now(),
            )
    except IntegrityError:
        # Someone else stored the same SN between the check and the insert.
        raise DomainError(_("序列号 %(sn)s 已在库存中。") % {"sn": sn}, code="sn_duplicate") from None
    _audit(key, "created", actor, model=key.model, vendor=key.vendor, emulated=emulated)
    return key


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    skipped: list[tuple[int, str, str]] = field(default_factory=list)  # (line, sn, reason)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)


def usb_keys_import(*, rows: Iterable[tuple[int, Mapping[str, str]]], actor: str = "") -> ImportReport:
    """Import stock rows (line number, {sn, model, vendor, so_pin, user_pin}). Idempotent: a key
    already in stock is skipped and left as it is; a row that repeats an SN of the same file, or
    is invalid, is rejected with the reason. Each row commits on its own."""
    report = ImportReport()
    seen: dict[str, int] = {}
    for line, row in rows:
        sn = str(row.get("sn") or "").strip()
        if sn and sn in seen:
            report.rejected.append((line, sn, _("与第 %(n)d 行的序列号重复") % {"n": seen[sn]}))
            continue
        if sn:
            seen[sn] = line
        if sn and UsbKey.objects.filter(sn=sn).exists():
            report.skipped.append((line, sn, _("已在库存中，未改动")))
            continue
        try:
            usb_key_create(
                sn=sn,
                so_pin=str(row.get("so_pin") or ""),
                model=str(row.get("model") or ""),
                vendor=str(row.get("vendor") or ""),
                initial_user_pin=str(row.get("user_pin") or ""),
                actor=actor,
            )
        except DomainError as exc:
            report.rejected.append((line, sn, exc.message))
        else:
            report.created.append(sn)
    return report


# ---- issuing and status -------------------------------------------------------------------------


@transaction.atomic
def usb_key_take_from_stock(*, owner_uscc: str, model: str = "", actor: str = "") -> UsbKey:
    """Take the oldest key in stock (of `model`, if given) and issue it to the organisation.

    Two issuers never get the same key: on PostgreSQL the candidate row is locked with
    SKIP LOCKED (a second issuer takes the next key instead of waiting); on every backend
    the status change is conditional on the key still being in stock."""
    owner_uscc = _uscc_check(owner_uscc)
    for _attempt in range(5):
        candidates = UsbKey.objects.filter(status=UsbKeyStatus.IN_STOCK)
        if model:
            candidates = candidates.filter(model=model)
        key = candidates.order_by("created_at", "pk").select_for_update(skip_locked=True).first()
        if key is None:
            raise DomainError(_("库存中没有可用的 USB Key。"), code="out_of_stock")
        now = timezone.now()
        taken = UsbKey.objects.filter(pk=key.pk, status=UsbKeyStatus.IN_STOCK).update(
            status=UsbKeyStatus.ISSUED, owner_uscc=owner_uscc, issued_at=now, status_changed_at=now, updated_at=now
        )
        if taken:
            key.refresh_from_db()
            _audit(key, "taken_from_stock", actor, owner_uscc=owner_uscc)
            return key
    raise DomainError(_("USB Key 库存正忙，请稍后重试。"), code="stock_busy")


_STATUS_FROM: dict[str, frozenset[str]] = {
    UsbKeyStatus.ISSUED: frozenset({UsbKeyStatus.IN_STOCK}),
    UsbKeyStatus.LOCKED: frozenset({UsbKeyStatus.ISSUED}),
    UsbKeyStatus.LOST: frozenset({UsbKeyStatus.ISSUED, UsbKeyStatus.LOCKED}),
    UsbKeyStatus.RETIRED: frozenset(
        {UsbKeyStatus.IN_STOCK, UsbKeyStatus.ISSUED, UsbKeyStatus.LOCKED, UsbKeyStatus.LOST}
    ),
}


def _transition(*, key: UsbKey, to: UsbKeyStatus, actor: str, **changes: object) -> UsbKey:
    locked = _lock(key)
    if locked.status not in _STATUS_FROM[to]:
        raise InvalidTransition(
            _("USB Key %(sn)s 当前状态为“%(now)s”，不能改为“%(to)s”。")
            % {"sn": locked.sn, "now": locked.get_status_display(), "to": to.label},
            code="usb_key_status",
        )
    previous = locked.status
    locked.status = to
    locked.status_changed_at = timezone.now()
    for name, value in changes.items():
        setattr(locked, name, value)
    locked.save(update_fields=["status", "status_changed_at", "updated_at", *changes])
    _audit(locked, f"marked_{to.value}", actor, previous=previous, **{k: str(v) for k, v in changes.items()})
    return locked


@transaction.atomic
def usb_key_mark_issued(*, key: UsbKey, owner_uscc: str, actor: str = "") -> UsbKey:
    """A particular key (scanned at the issuance station) goes to the organisation."""
    owner_uscc = _uscc_check(owner_uscc)
    return _transition(key=key, to=UsbKeyStatus.ISSUED, actor=actor, owner_uscc=owner_uscc, issued_at=timezone.now())


@transaction.atomic
def usb_key_mark_locked(*, key: UsbKey, actor: str = "") -> UsbKey:
    return _transition(key=key, to=UsbKeyStatus.LOCKED, actor=actor)


@transaction.atomic
def usb_key_mark_lost(*, key: UsbKey, actor: str = "") -> UsbKey:
    return _transition(key=key, to=UsbKeyStatus.LOST, actor=actor)


@transaction.atomic
def usb_key_mark_retired(*, key: UsbKey, actor: str = "") -> UsbKey:
    return _transition(key=key, to=UsbKeyStatus.RETIRED, actor=actor)


# ---- the administrator PIN ----------------------------------------------------------------------


@transaction.atomic
def usb_key_so_pin_release_once(*, key: UsbKey, fresh_so_pin: str, actor: str = "") -> str:
    """Hand out the key's current administrator PIN for an online unlock, exactly once.

    In the same transaction the stored PIN is replaced by `fresh_so_pin`, which the agent sets
    on the key during the unlock: the released PIN is never valid again on the server. Until
    the agent's success is confirmed (`usb_key_so_pin_confirm`), a second release is refused,
    so one released PIN can never be followed by another one the key does not have."""
    locked = _lock(key)
    if locked.status not in (UsbKeyStatus.ISSUED, UsbKeyStatus.LOCKED):
        raise InvalidTransition(
            _("USB Key %(sn)s 当前状态为“%(now)s”，不能在线解锁。")
            % {"sn": locked.sn, "now": locked.get_status_display()},
            code="usb_key_status",
        )
    if locked.so_pin_released_at is not None:
        raise DomainError(
            _("USB Key %(sn)s 的管理员 PIN 已于 %(t)s 发放，正在等待解锁结果，不能再次发放。")
            % {"sn": locked.sn, "t": timezone.localtime(locked.so_pin_released_at).strftime("%Y-%m-%d %H:%M")},
            code="so_pin_already_released",
        )
    _pin_check(fresh_so_pin, lo=SO_PIN_MIN, hi=SO_PIN_MAX, what=_("新的管理员 PIN"))
    current = unseal(locked.so_pin_sealed)
    if secrets.compare_digest(current.encode(), fresh_so_pin.encode()):
        raise DomainError(_("新的管理员 PIN 必须与当前的不同。"), code="pin_invalid")
    locked.so_pin_sealed = seal(fresh_so_pin)
    locked.so_pin_released_at = timezone.now()
    locked.save(update_fields=["so_pin_sealed", "so_pin_released_at", "updated_at"])
    _audit(locked, "so_pin_released", actor)
    return current


@transaction.atomic
def usb_key_so_pin_confirm(*, key: UsbKey, actor: str = "") -> UsbKey:
    """The agent reported the unlock done: the key now has the fresh administrator PIN and the
    user's new PIN. A locked key is issued again; the next unlock may release the PIN again."""
    locked = _lock(key)
    if locked.so_pin_released_at is None:
        raise DomainError(_("USB Key %(sn)s 没有待确认的解锁。") % {"sn": locked.sn}, code="no_pending_unlock")
    locked.so_pin_released_at = None
    fields = ["so_pin_released_at", "updated_at"]
    if locked.status == UsbKeyStatus.LOCKED:
        locked.status = UsbKeyStatus.ISSUED
        locked.status_changed_at = timezone.now()
        fields += ["status", "status_changed_at"]
    locked.save(update_fields=fields)
    _audit(locked, "unlocked", actor)
    return locked


@transaction.atomic
def usb_key_initial_user_pin_reveal(*, key: UsbKey, actor: str) -> str:
    """The initial user PIN for the PIN letter packed with the key (audited; "" if none)."""
    locked = _lock(key)
    _audit(locked, "initial_user_pin_revealed", actor)
    return unseal(locked.initial_user_pin_sealed) if locked.initial_user_pin_sealed else ""


# ---- certificates on a key ----------------------------------------------------------------------


@transaction.atomic
def usb_key_certificate_add(
    *, key: UsbKey, serial_hex: str, role: str, not_after: datetime.datetime, actor: str = ""
) -> UsbKeyCertificate:
    serial = serial_hex.strip().lower().removeprefix("0x")
    if not serial or any(ch not in string.hexdigits for ch in serial):
        raise DomainError(_("证书序列号应为十六进制。"), code="serial_invalid")
    if role not in UsbKeyCertificateRole.values:
        raise DomainError(_("证书用途应为签名或加密。"), code="role_invalid")
    locked = _lock(key)
    cert, created = UsbKeyCertificate.objects.get_or_create(
        key=locked, serial_hex=serial, defaults={"role": role, "not_after": not_after}
    )
    if created:
        _audit(locked, "certificate_added", actor, serial=serial, role=role, not_after=not_after.isoformat())
    return cert


@transaction.atomic
def usb_key_certificate_remove(*, key: UsbKey, serial_hex: str, actor: str = "") -> None:
    serial = serial_hex.strip().lower().removeprefix("0x")
    locked = _lock(key)
    if UsbKeyCertificate.objects.filter(key=locked, serial_hex=serial).delete()[0]:
        _audit(locked, "certificate_removed", actor, serial=serial)
