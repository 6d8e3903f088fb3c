"""The CA engine's write API. The RA calls these; nothing else changes CA state.

Public functions (keyword-only, typed):

- `ca_hierarchy_init()` – root CA, issuing CA, OCSP signer, first CRLs; idempotent.
- `certificate_issue(request=IssuanceRequest)` – record (with the public-key check) → lint → sign → publish and store.
- `certificate_revoke(serial=, reason=, invalidity_date=)`, `certificate_unhold(serial=)`.
- `crl_generate(role=)`, `ocsp_signer_rotate(force=)`, `ocsp_respond(request_der=)`,
  `ocsp_responses_refresh()`, `pki_maintain()`.

Issuance commits each pipeline step on its own (see `issuance`), so
`certificate_issue` must be called outside any transaction. Revocation and
CRL generation join the caller's transaction: the revocation, the new CRL and
the re-signed OCSP response commit together or not at all.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from django.db import transaction
from django.utils import timezone

from certdesk.pki import conf, crl, lint, responder
from certdesk.pki.errors import (
    CaAlreadyExists,
    CaNotInitialised,
    CertificateNotFound,
    CsrInvalid,
    KeyExists,
    KeyRejected,
    LintFailed,
    PkiError,
    RequestInvalid,
    RevocationRefused,
)
from certdesk.pki.issuance import Refusal, Subject, issue
from certdesk.pki.keypolicy import public_key_check
from certdesk.pki.keys import CaPrivateKey, CaPublicKey, KeyAlgorithm, key_backend, signature_hash
from certdesk.pki.models import CertificateAuthority, Crl, IssuedCertificate, OcspResponse
from certdesk.pki.profiles import (
    ISSUING_CA,
    OCSP_SIGNER,
    ROOT_CA,
    Profile,
    add_years,
    ca_name,
    certificate_builder,
    organisation_subject,
    profile_get,
)
from certdesk.pki.selectors import (
    ca_get,
    ca_get_recent,
    ca_recent_clear,
    certificate_status_info,
    public_key_conflict,
)
from certdesk.pki.serials import serial_hex, serial_normalise
from certdesk.pki.signers import Signer, chain_pem, key_sha1, signer_for, signers_clear, spki_sha256
from certdesk.pki.types import (
    CertificateStatusInfo,
    CrlInfo,
    IssuanceRequest,
    IssuedCertificateResult,
    RevocationReason,
)

logger = logging.getLogger(__name__)

Role = CertificateAuthority.Role
CaStatus = CertificateAuthority.Status
Publish = Callable[[IssuedCertificate, x509.Certificate], OcspResponse | None]
CA_PROFILES = (ROOT_CA.name, ISSUING_CA.name, OCSP_SIGNER.name)
ROOT_NAME = "root-ca"
ISSUING_NAME = "issuing-ca"


def _now() -> datetime.datetime:
    # X.509 times have one-second resolution; keep the database equal to the certificate.
    return timezone.now().replace(microsecond=0)


# --------------------------------------------------------------------------- CA hierarchy


@dataclass(frozen=True)
class HierarchyInitResult:
    root: CertificateAuthority
    issuing: CertificateAuthority
    ocsp_signer: CertificateAuthority
    created: tuple[str, ...]


def _ca_activate(ca: CertificateAuthority, certificate: x509.Certificate) -> None:
    public_key = certificate.public_key()
    ca.certificate_der = certificate.public_bytes(serialization.Encoding.DER)
    ca.serial = serial_hex(certificate.serial_number)
    ca.subject = certificate.subject.rfc4514_string()
    ca.not_before = certificate.not_valid_before_utc
    ca.not_after = certificate.not_valid_after_utc
    ca.name_sha1 = hashlib.sha1(certificate.subject.public_bytes()).hexdigest()  # noqa: S324 - CertID hash
    ca.key_sha1 = key_sha1(public_key)  # type: ignore[arg-type]
    ca.status = CaStatus.ACTIVE
    ca.save()


def _ca_ensure(
    *,
    name: str,
    role: str,
    parent: CertificateAuthority | None,
    profile: Profile,
    common_name: str,
    years: int,
    algorithm: KeyAlgorithm,
    backend_name: str,
    now: datetime.datetime,
) -> tuple[CertificateAuthority, bool]:
    ca = CertificateAuthority.objects.filter(name=name).first()
    if ca is not None and ca.status == CaStatus.ACTIVE:
        return ca, False
    if ca is not None and ca.status == CaStatus.RETIRED:
        raise CaAlreadyExists(f"CA {name} 已停用，不能重新初始化。", code="ca_retired")
    if ca is None:
        backend = key_backend(backend_name)
        if backend.exists(key_ref=name):
            raise KeyExists(
                f"密钥 {backend.describe(key_ref=name)} 已存在但数据库里没有对应的 CA：拒绝覆盖。"
                "请确认它不再需要后手工移走，或恢复原来的数据库。",
                code="key_exists",
            )
        # The row (with its key reference) is written before the key exists, so an
        # interrupted run is resumed next time instead of leaving an unknown key behind.
        with transaction.atomic(durable=True):
            ca = CertificateAuthority.objects.create(
                name=name,
                role=role,
                parent=parent,
                key_backend=backend.name,
                key_ref=name,
                key_algorithm=algorithm.value,
                status=CaStatus.PENDING,
            )
        key = backend.generate(key_ref=name, algorithm=algorithm)
    else:
        backend = key_backend(ca.key_backend)
        algorithm = KeyAlgorithm(ca.key_algorithm)
        exists = backend.exists(key_ref=ca.key_ref)
        key = backend.load(key_ref=ca.key_ref) if exists else backend.generate(key_ref=ca.key_ref, algorithm=algorithm)

    public_key: CaPublicKey = key.public_key()
    not_after = add_years(now, years)
    issuer_certificate: x509.Certificate | None = None
    signing_key: CaPrivateKey = key
    issuer_ca = ca
    if parent is not None:
        parent_signer = signer_for(parent)
        issuer_certificate, signing_key, issuer_ca = parent_signer.certificate, parent_signer.key, parent
        not_after = min(not_after, parent_signer.certificate.not_valid_after_utc)
    subject = ca_name(common_name)

    def make_builder(serial: int) -> x509.CertificateBuilder:
        return certificate_builder(
            profile=profile,
            subject=subject,
            public_key=public_key,
            serial=serial,
            not_before=now,
            not_after=not_after,
            issuer=issuer_certificate,
            issuer_slug="root",
        )

    issued = issue(
        issuer=issuer_ca,
        signing_key=signing_key,
        profile=profile.name,
        subject=Subject(name=subject),
        public_key=public_key,
        not_before=now,
        not_after=not_after,
        make_builder=make_builder,
    )
    with transaction.atomic(durable=True):
        _ca_activate(ca, issued.certificate)
    return ca, True


def ca_hierarchy_init(*, algorithm: str | None = None, backend: str | None = None) -> HierarchyInitResult:
    """Create the root CA, the issuing CA, the OCSP signer and the first CRLs.

    Idempotent: what exists is kept. A key already present in the backend
    without a CA row is never overwritten (`KeyExists`).
    """
    try:
        key_algorithm = KeyAlgorithm.parse(algorithm or conf.key_algorithm_name())
    except ValueError as exc:
        raise RequestInvalid(str(exc), code="algorithm_unknown") from None
    backend_name = backend or conf.key_backend_name()
    now = _now()
    org = conf.ca_organization()
    created: list[str] = []
    root, made = _ca_ensure(
        name=ROOT_NAME,
        role=Role.ROOT,
        parent=None,
        profile=ROOT_CA,
        common_name=f"{org} Root CA",
        years=conf.root_validity_years(),
        algorithm=key_algorithm,
        backend_name=backend_name,
        now=now,
    )
    if made:
        created.append(root.name)
    issuing, made = _ca_ensure(
        name=ISSUING_NAME,
        role=Role.ISSUING,
        parent=root,
        profile=ISSUING_CA,
        common_name=f"{org} Issuing CA",
        years=conf.issuing_validity_years(),
        algorithm=key_algorithm,
        backend_name=backend_name,
        now=now,
    )
    if made:
        created.append(issuing.name)
        responder.issuer_index.clear()
        ca_recent_clear()
    before = _ocsp_signer_current(issuing, now)
    signer = ocsp_signer_rotate()
    if before is None or signer.pk != before.pk:
        created.append(signer.name)
    for ca in (root, issuing):
        if not Crl.objects.filter(issuer=ca).exists():
            _crl_generate(CertificateAuthority.objects.get(pk=ca.pk))
            created.append(f"crl:{ca.name}")
    return HierarchyInitResult(root=root, issuing=issuing, ocsp_signer=signer, created=tuple(created))


# --------------------------------------------------------------------------- OCSP signer


def _ocsp_signer_current(issuing: CertificateAuthority, now: datetime.datetime) -> CertificateAuthority | None:
    return (
        CertificateAuthority.objects.filter(
            role=Role.OCSP, parent=issuing, status=CaStatus.ACTIVE, not_after__gt=now + conf.ocsp_signer_renew_before()
        )
        .order_by("-not_after")
        .first()
    )


def ocsp_signer_rotate(*, force: bool = False) -> CertificateAuthority:
    """Issue a new delegated OCSP signer when the current one nears expiry (or `force`).

    The new signer's key lives in the issuing CA's backend; its certificate goes
    through the ordinary pipeline (recorded and linted), and a sample response
    it signs is linted before it goes live. `force` (a suspected signer
    compromise) also drops every pre-signed response so none signed by the old
    key is served again.
    """
    issuing = ca_get(role=Role.ISSUING)
    now = _now()
    current = _ocsp_signer_current(issuing, now)
    if current is not None and not force:
        return current
    backend = key_backend(issuing.key_backend)
    algorithm = KeyAlgorithm(issuing.key_algorithm)
    name = f"ocsp-{now:%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
    with transaction.atomic(durable=True):
        ca = CertificateAuthority.objects.create(
            name=name,
            role=Role.OCSP,
            parent=issuing,
            key_backend=backend.name,
            key_ref=name,
            key_algorithm=algorithm.value,
            status=CaStatus.PENDING,
        )
    key = backend.generate(key_ref=name, algorithm=algorithm)
    public_key: CaPublicKey = key.public_key()
    issuing_signer = signer_for(issuing)
    not_after = min(now + conf.ocsp_signer_validity(), issuing_signer.certificate.not_valid_after_utc)
    subject = ca_name(f"{conf.ca_organization()} OCSP Responder")

    def make_builder(serial: int) -> x509.CertificateBuilder:
        return certificate_builder(
            profile=OCSP_SIGNER,
            subject=subject,
            public_key=public_key,
            serial=serial,
            not_before=now,
            not_after=not_after,
            issuer=issuing_signer.certificate,
        )

    issued = issue(
        issuer=issuing,
        signing_key=issuing_signer.key,
        profile=OCSP_SIGNER.name,
        subject=Subject(name=subject),
        public_key=public_key,
        not_before=now,
        not_after=not_after,
        make_builder=make_builder,
    )
    sample = responder.sign_response(
        signer=Signer(ca_id=ca.pk, name=name, certificate=issued.certificate, key=key),
        issuer_id=issuing.pk,
        issuer_certificate=issuing_signer.certificate,
        serial=issued.certificate.serial_number,
        hash_name="sha1",
        nonce=None,
        now=now,
    )
    refusing = lint.blocking(lint.lint_ocsp_response(sample.der))
    if refusing:
        raise LintFailed(
            "新 OCSP 签名者签出的响应未通过 pkilint 检查：" + "；".join(map(str, refusing)),
            findings=[str(f) for f in refusing],
        )
    with transaction.atomic(durable=True):
        CertificateAuthority.objects.filter(role=Role.OCSP, parent=issuing, status=CaStatus.ACTIVE).update(
            status=CaStatus.RETIRED
        )
        _ca_activate(ca, issued.certificate)
        responder.signer_cache_clear()
        if force:
            OcspResponse.objects.filter(issuer=issuing).delete()
            responder.announce_change()
    logger.info("OCSP signer %s active until %s", name, not_after.isoformat())
    return ca


# --------------------------------------------------------------------------- issuance


def _request_public_key(request: IssuanceRequest) -> CaPublicKey:
    if bool(request.csr_pem) == bool(request.public_key_pem):
        raise RequestInvalid("请提供 CSR 或公钥之一（不能都给，也不能都不给）。", code="request_invalid")
    key: PublicKeyTypes
    if request.csr_pem:
        try:
            csr = x509.load_pem_x509_csr(request.csr_pem.encode())
        except ValueError as exc:
            raise CsrInvalid(f"CSR 无法解析（应为 PEM 格式的 PKCS#10）：{exc}", code="csr_invalid") from None
        try:
            key = csr.public_key()
        except (UnsupportedAlgorithm, ValueError) as exc:
            raise KeyRejected(
                f"CSR 中的公钥算法或曲线不受支持，仅接受 RSA（≥2048 位）或 ECDSA P-256/P-384：{exc}",
                code="key_curve_unsupported" if "curve" in str(exc).lower() else "key_type_unsupported",
            ) from None
        try:
            valid = csr.is_signature_valid
        except (UnsupportedAlgorithm, ValueError, InvalidSignature):
            valid = False
        if not valid:
            raise CsrInvalid("CSR 的签名验证失败：它不是由所含公钥对应的私钥签的。", code="csr_bad_signature")
    else:
        if not request.proof_of_possession_verified:
            raise RequestInvalid(
                "只凭公钥签发证书时，RA 必须已验证申请者持有私钥（proof_of_possession_verified）。",
                code="pop_not_verified",
            )
        try:
            key = serialization.load_pem_public_key((request.public_key_pem or "").encode())
        except UnsupportedAlgorithm as exc:
            raise KeyRejected(f"公钥算法或曲线不受支持：{exc}", code="key_type_unsupported") from None
        except ValueError as exc:
            raise RequestInvalid(f"公钥无法解析（应为 PEM 格式）：{exc}", code="request_invalid") from None
    return public_key_check(key)


def _publish_good(issuer: CertificateAuthority, issuer_signer: Signer) -> Publish:
    """The publish step: pre-sign the new certificate's "good" OCSP response, stored with the certificate."""

    def publish(record: IssuedCertificate, certificate: x509.Certificate) -> OcspResponse | None:
        now = _now()
        try:
            ocsp_signer = responder.active_signer(issuer.pk, now)
        except responder.NoSigner:
            logger.warning("no OCSP signer for %s: %s will be signed on first request", issuer.name, record.serial)
            return None
        signed = responder.sign_response(
            signer=ocsp_signer,
            issuer_id=issuer.pk,
            issuer_certificate=issuer_signer.certificate,
            serial=certificate.serial_number,
            hash_name="sha1",
            nonce=None,
            now=now,
            state=(IssuedCertificate.Status.ISSUED, None, None, 0),
        )
        return responder.response_row(serial=record.serial, hash_name="sha1", issuer_id=issuer.pk, response=signed)

    return publish


def _key_conflict_error(profile: str) -> KeyRejected:
    """Why a public key is refused, given the profile of the certificate that forbids it."""
    if profile in CA_PROFILES:
        return KeyRejected("申请中的公钥是本 CA 自己的密钥。", code="key_is_ca_key")
    return KeyRejected(
        "该公钥所属的证书曾因密钥泄露（keyCompromise）被吊销，不能再用于签发：请生成新的密钥对。",
        code="key_compromised",
    )


def certificate_issue(*, request: IssuanceRequest) -> IssuedCertificateResult:
    """Issue one certificate for an RA-approved request.

    Refusals: `CsrInvalid`, `KeyRejected`, `RequestInvalid`, `LintFailed`,
    `CaNotInitialised` (each with a stable `code`). Must be called outside a
    transaction (each pipeline step commits on its own).
    """
    profile = profile_get(request.profile)
    public_key = _request_public_key(request)
    subject = organisation_subject(
        organisation_name=request.organisation_name,
        uscc=request.uscc,
        province=request.province,
        city=request.city,
    )
    years = request.validity_years
    if not isinstance(years, int) or not 1 <= years <= profile.max_validity_years():
        raise RequestInvalid(
            f"有效期应为 1 到 {profile.max_validity_years()} 年，而不是 {years}。", code="validity_invalid"
        )
    issuing = ca_get_recent(role=Role.ISSUING)
    issuer_signer = signer_for(issuing)
    now = _now()
    base = now
    renewal_of: IssuedCertificate | None = None
    if request.renewal_of:
        try:
            renewal_of = IssuedCertificate.objects.get(serial=serial_normalise(request.renewal_of))
        except (IssuedCertificate.DoesNotExist, CertificateNotFound):
            raise RequestInvalid(f"要更新的证书 {request.renewal_of} 不存在。", code="renewal_invalid") from None
        if renewal_of.status != IssuedCertificate.Status.ISSUED or renewal_of.revoked_at is not None:
            raise RequestInvalid(
                f"证书 {renewal_of.serial} 未签发或已吊销，不能更新；请办理新证书。", code="renewal_invalid"
            )
        if renewal_of.uscc != subject.uscc or renewal_of.profile != profile.name:
            raise RequestInvalid(
                f"证书 {renewal_of.serial} 属于另一机构或另一模板，不能据此更新。", code="renewal_invalid"
            )
        # 证书更新: the new validity runs on from the old expiry.
        base = max(now, renewal_of.not_after)
    not_after = add_years(base, years)
    if not_after > issuer_signer.certificate.not_valid_after_utc:
        raise RequestInvalid(
            f"证书有效期（至 {not_after:%Y-%m-%d}）不能超过签发 CA 的有效期"
            f"（至 {issuer_signer.certificate.not_valid_after_utc:%Y-%m-%d}）。",
            code="validity_exceeds_issuer",
        )
    name = subject.to_name()

    def make_builder(serial: int) -> x509.CertificateBuilder:
        return certificate_builder(
            profile=profile,
            subject=name,
            public_key=public_key,
            serial=serial,
            not_before=now,
            not_after=not_after,
            issuer=issuer_signer.certificate,
        )

    issued = issue(
        issuer=issuing,
        signing_key=issuer_signer.key,
        profile=profile.name,
        subject=Subject(name=name, organisation_name=subject.organisation_name, uscc=subject.uscc),
        public_key=public_key,
        not_before=now,
        not_after=not_after,
        make_builder=make_builder,
        renewal_of=renewal_of,
        reference=request.reference,
        publish=_publish_good(issuing, issuer_signer),
        refusal=Refusal(
            lookup=public_key_conflict(spki_sha256=spki_sha256(public_key), ca_profiles=CA_PROFILES),
            error=_key_conflict_error,
        ),
    )
    return IssuedCertificateResult(
        serial=issued.record.serial,
        profile=profile.name,
        certificate_der=bytes(issued.record.certificate_der or b""),
        certificate_pem=issued.certificate.public_bytes(serialization.Encoding.PEM).decode(),
        chain_pem=chain_pem(issuing),
        not_before=now,
        not_after=not_after,
        lint_findings=issued.findings,
    )


# --------------------------------------------------------------------------- revocation


def _ocsp_republish(record: IssuedCertificate) -> None:
    """Re-sign the stored responses of one certificate now, inside the caller's transaction, and
    tell the workers' memory caches when it commits."""
    responder.announce_change(record.serial)
    now = _now()
    hash_names = set(OcspResponse.objects.filter(serial=record.serial).values_list("hash_algorithm", flat=True)) | {
        "sha1"
    }
    try:
        ocsp_signer = responder.active_signer(record.issuer_id, now)
        issuer_certificate = signer_for(record.issuer).certificate
    except (responder.NoSigner, ValueError):
        # No signer (e.g. a CA certificate issued by the root): never leave a stale answer behind.
        OcspResponse.objects.filter(serial=record.serial).delete()
        return
    for hash_name in sorted(hash_names):
        signed = responder.sign_response(
            signer=ocsp_signer,
            issuer_id=record.issuer_id,
            issuer_certificate=issuer_certificate,
            serial=int(record.serial, 16),
            hash_name=hash_name,
            nonce=None,
            now=now,
        )
        responder.store(serial=record.serial, hash_name=hash_name, issuer_id=record.issuer_id, response=signed)


def _locked_record(serial: str) -> IssuedCertificate:
    normalised = serial_normalise(serial)
    record = IssuedCertificate.objects.select_for_update().select_related("issuer").filter(serial=normalised).first()
    if record is None:
        raise CertificateNotFound(f"没有序列号为 {normalised} 的证书。")
    return record


@transaction.atomic
def certificate_revoke(
    *,
    serial: str,
    reason: RevocationReason,
    invalidity_date: datetime.datetime | None = None,
) -> CertificateStatusInfo:
    """Revoke with an RFC 5280 reason; the CRL and the OCSP response change in the same transaction.

    Only certificateHold can be lifted (`certificate_unhold`) or changed to a
    final reason; any other revocation is final.
    """
    reason = RevocationReason(reason)
    if reason is RevocationReason.REMOVE_FROM_CRL:
        raise RevocationRefused("removeFromCRL 只用于增量 CRL，不是吊销原因。", code="reason_invalid")
    record = _locked_record(serial)
    # RECORDED: possibly signed before a crash; revocable to be safe.
    if record.status not in (IssuedCertificate.Status.ISSUED, IssuedCertificate.Status.RECORDED):
        raise RevocationRefused(
            f"证书 {record.serial} 没有签发（状态：{record.status}），无需吊销。", code="not_issued"
        )
    now = _now()
    if invalidity_date is not None:
        if timezone.is_naive(invalidity_date):
            raise RevocationRefused("失效日期必须带时区。", code="invalidity_date_invalid")
        if invalidity_date > now:
            raise RevocationRefused("失效日期（invalidityDate）不能晚于现在。", code="invalidity_date_invalid")
        invalidity_date = invalidity_date.astimezone(datetime.UTC).replace(microsecond=0)
    if record.revoked_at is not None:
        if record.revocation_reason != RevocationReason.CERTIFICATE_HOLD or reason is RevocationReason.CERTIFICATE_HOLD:
            current = RevocationReason(record.revocation_reason or 0).rfc_name
            raise RevocationRefused(f"证书 {record.serial} 已被吊销（{current}）。", code="already_revoked")
        # A hold becomes final; the revocation date stays the date it was put on hold.
    else:
        record.revoked_at = now
    record.revocation_reason = int(reason)
    record.invalidity_date = invalidity_date
    record.status_version += 1
    record.save(update_fields=["revoked_at", "revocation_reason", "invalidity_date", "status_version", "updated_at"])
    # A revoked OCSP signer stops signing at once, and nothing it signed is served again;
    # the next request rotates a new signer in and re-signs.
    if CertificateAuthority.objects.filter(serial=record.serial, role=Role.OCSP, parent_id=record.issuer_id).update(
        status=CaStatus.RETIRED
    ):
        OcspResponse.objects.filter(issuer_id=record.issuer_id).delete()
        responder.announce_change()
    _crl_generate(CertificateAuthority.objects.get(pk=record.issuer_id))
    _ocsp_republish(record)
    logger.info("revoked %s (%s)", record.serial, reason.rfc_name)
    return certificate_status_info(record)


@transaction.atomic
def certificate_unhold(*, serial: str) -> CertificateStatusInfo:
    """Lift a certificateHold; no other revocation can be undone."""
    record = _locked_record(serial)
    if record.revoked_at is None or record.revocation_reason != RevocationReason.CERTIFICATE_HOLD:
        raise RevocationRefused(
            f"证书 {record.serial} 不处于暂停（certificateHold）状态，不能解除。", code="not_on_hold"
        )
    record.revoked_at = None
    record.revocation_reason = None
    record.invalidity_date = None
    record.status_version += 1
    record.save(update_fields=["revoked_at", "revocation_reason", "invalidity_date", "status_version", "updated_at"])
    _crl_generate(CertificateAuthority.objects.get(pk=record.issuer_id))
    _ocsp_republish(record)
    return certificate_status_info(record)


# --------------------------------------------------------------------------- CRL


@transaction.atomic
def _crl_generate(ca: CertificateAuthority) -> CrlInfo:
    # The CA row lock serialises CRL numbers; the savepoint joins a revocation's transaction.
    ca = CertificateAuthority.objects.select_for_update().get(pk=ca.pk)
    signer = signer_for(ca)
    number = ca.crl_number + 1
    this_update = _now()
    next_update = this_update + (conf.root_crl_validity() if ca.role == Role.ROOT else conf.crl_validity())
    ski = signer.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    hash_algorithm = signature_hash(signer.key)
    header = crl.CrlHeader(
        issuer=signer.certificate.subject.public_bytes(),
        this_update=this_update,
        next_update=next_update,
        authority_key_identifier=ski.digest,
        number=number,
        signature_algorithm=crl.signature_algorithm(signer.key, hash_algorithm),
    )
    # Entries stay until the certificate expires (RFC 5280 lets a CA drop them after that). Newest
    # first, streamed: each row is DER-encoded into one buffer as it arrives (see `certdesk.pki.crl`).
    revoked_rows = (
        IssuedCertificate.objects.filter(issuer=ca, revoked_at__isnull=False, not_after__gte=this_update)
        .order_by("-revoked_at")
        .values_list("serial", "revoked_at", "revocation_reason", "invalidity_date")
    )
    revoked = crl.revoked_list(crl.rows_streamed(revoked_rows), sample_limit=conf.crl_lint_max_entries())
    entries = revoked.count
    sample = bytearray(b"".join(revoked.sample)) if entries > len(revoked.sample) else None
    revoked.sample.clear()
    der = crl.crl_sign(header=header, entries=revoked.der, key=signer.key, hash_algorithm=hash_algorithm)
    if not crl.crl_verifies(der, issuer_key=signer.certificate.public_key(), entries=entries):  # type: ignore[arg-type]
        raise PkiError(f"CRL #{number} 编码或签名自检失败，未发布。", code="crl_self_check_failed")
    lint_der = der
    if sample is not None:
        # pkilint needs ~0.3 ms an entry: past PKI_CRL_LINT_MAX_ENTRIES lint the same header with the
        # newest entries and one of every entry shape (reason × invalidityDate), made by the same encoder.
        lint_der = crl.crl_sign(
            header=header, entries=sample, key=lint.lint_signing_key(signer.key), hash_algorithm=hash_algorithm
        )
    refusing = lint.blocking(lint.lint_crl(lint_der))
    if refusing:
        raise LintFailed(
            f"CRL #{number} 未通过 pkilint 检查，未发布：" + "；".join(map(str, refusing)),
            findings=[str(f) for f in refusing],
        )
    row = Crl.objects.create(
        issuer=ca, number=number, der=b"", this_update=this_update, next_update=next_update, entries=entries
    )
    crl.binary_field_write(row, "der", der)
    CertificateAuthority.objects.filter(pk=ca.pk).update(crl_number=number, next_crl_update=next_update)
    return CrlInfo(
        issuer=ca.name, number=number, this_update=this_update, next_update=next_update, entries=entries, der=der
    )


@transaction.atomic
def crl_generate(*, role: str = Role.ISSUING) -> CrlInfo:
    """Sign, lint and publish a new full CRL for the active root or issuing CA."""
    if role not in (Role.ROOT, Role.ISSUING):
        raise RequestInvalid(f"只有根 CA 和签发 CA 发布 CRL，不是 {role!r}。", code="request_invalid")
    return _crl_generate(ca_get(role=role))


# --------------------------------------------------------------------------- OCSP


def ocsp_respond(*, request_der: bytes) -> bytes:
    """A DER OCSPResponse for a DER OCSPRequest; never raises.

    Malformed → malformedRequest, foreign issuer → unauthorized, anything
    unexpected → internalError (logged).
    """
    now = timezone.now()
    try:
        try:
            return responder.respond(request_der, now=now)
        except responder.NoSigner:
            ocsp_signer_rotate()
            return responder.respond(request_der, now=now)
    except Exception:
        logger.exception("OCSP responder failed")
        return responder.INTERNAL_ERROR


def ocsp_responses_refresh(*, limit: int = 10000) -> int:
    """Re-sign stored responses that have used up half their validity (oldest first)."""
    now = _now()
    due = list(
        OcspResponse.objects.filter(next_update__lte=now + conf.ocsp_validity() / 2)
        .order_by("next_update")
        .values_list("serial", "hash_algorithm", "issuer_id")[:limit]
    )
    signers: dict[int, tuple[Signer, x509.Certificate] | None] = {}
    done = 0
    for serial, hash_name, issuer_id in due:
        if issuer_id not in signers:
            try:
                issuer = CertificateAuthority.objects.get(pk=issuer_id)
                signers[issuer_id] = (responder.active_signer(issuer_id, now), signer_for(issuer).certificate)
            except (responder.NoSigner, ValueError):
                signers[issuer_id] = None
        pair = signers[issuer_id]
        if pair is None:
            continue
        signed = responder.sign_response(
            signer=pair[0],
            issuer_id=issuer_id,
            issuer_certificate=pair[1],
            serial=int(serial, 16),
            hash_name=hash_name,
            nonce=None,
            now=now,
        )
        responder.store(serial=serial, hash_name=hash_name, issuer_id=issuer_id, response=signed)
        done += 1
    return done


def pki_maintain() -> dict[str, int]:
    """The periodic work: CRLs past half their life, OCSP signer rotation, stale OCSP responses."""
    now = _now()
    report = {"crls": 0, "ocsp_signers": 0, "ocsp_responses": 0}
    for ca in CertificateAuthority.objects.filter(role__in=[Role.ROOT, Role.ISSUING], status=CaStatus.ACTIVE):
        validity = conf.root_crl_validity() if ca.role == Role.ROOT else conf.crl_validity()
        if ca.next_crl_update is None or ca.next_crl_update - validity / 2 <= now:
            _crl_generate(ca)
            report["crls"] += 1
    try:
        issuing = ca_get(role=Role.ISSUING)
    except CaNotInitialised:
        return report
    before = _ocsp_signer_current(issuing, now)
    after = ocsp_signer_rotate()
    if before is None or before.pk != after.pk:
        report["ocsp_signers"] = 1
    report["ocsp_responses"] = ocsp_responses_refresh()
    return report


def pki_caches_clear() -> None:
    """Forget per-process caches of CA keys and issuers (after re-initialising a CA in tests)."""
    signers_clear()
    ca_recent_clear()
    responder.issuer_index.clear()
    responder.memory_cache.clear()
    responder.signer_cache_clear()


__all__ = [
    "HierarchyInitResult",
    "ca_hierarchy_init",
    "certificate_issue",
    "certificate_revoke",
    "certificate_unhold",
    "crl_generate",
    "ocsp_respond",
    "ocsp_responses_refresh",
    "ocsp_signer_rotate",
    "pki_caches_clear",
    "pki_maintain",
]
