"""The one bridge from orders to the CA engine.

The RA decides *whether* and *what*: which order, which role, which subject
(from what the customer entered and the reviewer approved). The CA engine gets
an `IssuanceRequest` and never sees an order.
"""

from __future__ import annotations

import hashlib
from functools import partial

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from certdesk.accounts.models import User
from certdesk.core.errors import DomainError
from certdesk.orders.models import Order
from certdesk.orders.services import order_event_add
from certdesk.pki.models import IssuedCertificate
from certdesk.pki.services import certificate_issue, certificate_revoke
from certdesk.pki.signers import chain_pem
from certdesk.pki.types import IssuanceRequest, IssuedCertificateResult, RevocationReason
from certdesk.ra.models import PROFILE_FOR_ROLE, CertificateRole, OrderCertificate

Status = OrderCertificate.Status


def _spki_sha256(csr_pem: str = "", public_key_pem: str = "") -> str:
    if public_key_pem:
        try:
            public_key = serialization.load_pem_public_key(public_key_pem.encode())
        except (ValueError, UnsupportedAlgorithm):
            raise DomainError(_("公钥格式不正确（应为 PEM）。"), code="public_key_malformed") from None
    else:
        try:
            public_key = x509.load_pem_x509_csr(csr_pem.encode()).public_key()
        except (ValueError, UnsupportedAlgorithm):
            raise DomainError(_("证书请求（CSR）格式不正确。"), code="csr_malformed") from None
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def certificate_issued_for(*, reference: str, profile: str, spki_sha256: str) -> IssuedCertificateResult | None:
    """A certificate the CA already signed for this order, profile and key (crash recovery)."""
    record = (
        IssuedCertificate.objects.filter(
            reference=reference, profile=profile, spki_sha256=spki_sha256, status=IssuedCertificate.Status.ISSUED
        )
        .select_related("issuer")
        .first()
    )
    if record is None:
        return None
    certificate = x509.load_der_x509_certificate(bytes(record.certificate_der or b""))
    return IssuedCertificateResult(
        serial=record.serial,
        profile=record.profile,
        certificate_der=bytes(record.certificate_der or b""),
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
        chain_pem=chain_pem(record.issuer),
        not_before=record.not_before,
        not_after=record.not_after,
    )


def ra_roles_for(order: Order) -> list[CertificateRole]:
    """签名证书 always; 加密证书 too when the certificate type is dual."""
    if order.certificate_type.dual_certificate:
        return [CertificateRole.SIGN, CertificateRole.ENC]
    return [CertificateRole.SIGN]


def ra_issuance_request(
    *,
    order: Order,
    role: CertificateRole,
    csr_pem: str = "",
    public_key_pem: str = "",
    proof_of_possession_verified: bool = False,
    renewal_of: str = "",
) -> IssuanceRequest:
    """The CA request for `order`: a CSR, or a bare public key whose possession the caller has
    verified another way (an encryption key cannot sign its own CSR; see agent_certificate_request)."""
    region = order.certificate_type.sub_project.category.industry.region.name
    return IssuanceRequest(
        profile=PROFILE_FOR_ROLE[role],
        organisation_name=order.cert_org_name,
        uscc=order.cert_uscc,
        province=region,
        city=region,
        validity_years=order.years,
        csr_pem=csr_pem or None,
        public_key_pem=public_key_pem or None,
        proof_of_possession_verified=proof_of_possession_verified,
        renewal_of=renewal_of or None,
        reference=order.number,
    )


def _fill(record: OrderCertificate, result: IssuedCertificateResult) -> OrderCertificate:
    record.serial = result.serial
    record.certificate_pem = result.certificate_pem
    record.chain_pem = result.chain_pem
    record.not_before = result.not_before
    record.not_after = result.not_after
    record.status = Status.ISSUED
    record.save(update_fields=["serial", "certificate_pem", "chain_pem", "not_before", "not_after", "status"])
    return record


def ra_certificate_issue(
    *,
    order: Order,
    role: CertificateRole,
    csr_pem: str = "",
    public_key_pem: str = "",
    proof_of_possession_verified: bool = False,
    key_sn: str,
    actor: User | None,
    renewal_of: str = "",
) -> OrderCertificate:
    """Issue (once) the `role` certificate of `order` for the key in `csr_pem`.

    Idempotent: the same order, role and public key always give the same
    certificate, whether the first call finished, crashed after the CA signed,
    or is still running elsewhere. A new key for the same role supersedes an
    earlier certificate that never reached a key (it is revoked as superseded).
    """
    if role not in ra_roles_for(order):
        raise DomainError(
            _("该证书类别不包含%(r)s。") % {"r": str(CertificateRole(role).label)}, code="role_not_offered"
        )
    spki = _spki_sha256(csr_pem, public_key_pem)
    try:
        with transaction.atomic():
            record, _created = OrderCertificate.objects.get_or_create(
                order=order, role=role, spki_sha256=spki, defaults={"key_sn": key_sn, "uscc": order.cert_uscc}
            )
    except IntegrityError:  # the same request racing in: use the row it made
        record = OrderCertificate.objects.get(order=order, role=role, spki_sha256=spki)
    if record.status in (Status.ISSUED, Status.INSTALLED):
        return record
    if record.status != Status.REQUESTED:
        raise DomainError(_("该密钥对的证书已被替换或注销，请重新生成密钥对。"), code="certificate_retired")
    # Recovery: the CA may already have signed for this record before a crash.
    previous = certificate_issued_for(reference=order.number, profile=PROFILE_FOR_ROLE[role], spki_sha256=spki)
    if previous is None:
        # Outside any transaction: the CA commits each step of its pipeline itself.
        previous = certificate_issue(
            request=ra_issuance_request(
                order=order,
                role=role,
                csr_pem=csr_pem,
                public_key_pem=public_key_pem,
                proof_of_possession_verified=proof_of_possession_verified,
                renewal_of=renewal_of,
            )
        )
    with transaction.atomic():
        record = OrderCertificate.objects.select_for_update().get(pk=record.pk)
        if record.status == Status.REQUESTED:
            _fill(record, previous)
            order_event_add(
                order=order,
                kind="certificate_issued",
                actor=actor,
                data={"role": role, "serial": record.serial, "key_sn": key_sn},
            )
        _supersede_others(order=order, role=role, keep=record, actor=actor)
    return record


def _supersede_others(*, order: Order, role: str, keep: OrderCertificate, actor: User | None) -> None:
    stale = OrderCertificate.objects.filter(order=order, role=role, status=Status.ISSUED).exclude(pk=keep.pk)
    for other in stale:
        # Issued but never written to a key: nobody holds it, so it is withdrawn.
        assert other.serial is not None  # ISSUED records always carry their serial
        transaction.on_commit(partial(certificate_revoke, serial=other.serial, reason=RevocationReason.SUPERSEDED))
        other.status = Status.SUPERSEDED
        other.save(update_fields=["status"])
        order_event_add(order=order, kind="certificate_superseded", actor=actor, data={"serial": other.serial})


@transaction.atomic
def ra_certificates_installed(*, order: Order, serials: list[str], actor: User | None) -> list[OrderCertificate]:
    """The agent confirmed these certificates are on the key."""
    records = list(OrderCertificate.objects.select_for_update().filter(order=order, serial__in=serials))
    if len(records) != len(set(serials)):
        raise DomainError(_("确认的证书不属于该订单。"), code="serial_unknown")
    now = timezone.now()
    for record in records:
        if record.status == Status.ISSUED:
            record.status = Status.INSTALLED
            record.installed_at = now
            record.save(update_fields=["status", "installed_at"])
        elif record.status != Status.INSTALLED:
            raise DomainError(_("证书 %(s)s 已被替换或注销。") % {"s": record.serial}, code="certificate_retired")
    return records


def ra_certificate_revoke(*, serial: str, reason: RevocationReason, actor: User | None) -> None:
    """Revoke at the CA (CRL and OCSP follow at once) and mark the RA record."""
    certificate_revoke(serial=serial, reason=reason)
    with transaction.atomic():
        record = OrderCertificate.objects.select_for_update().filter(serial=serial).first()
        if record is not None and record.status != Status.REVOKED:
            record.status = Status.REVOKED
            record.save(update_fields=["status"])
            order_event_add(
                order=record.order,
                kind="certificate_revoked",
                actor=actor,
                data={"serial": serial, "reason": reason.rfc_name},
            )
