"""The issuance pipeline every certificate goes through, CA certificates included.

Boulder's order ("record before you sign, lint before you sign"):

1. build the to-be-signed certificate with a fresh random serial, as a pre-certificate signed by a
   throwaway key of the CA key's type (what lint reads);
2. record it: one INSERT, committed by itself, that reserves the serial (unique) and stores the
   pre-certificate, status `recorded`. The caller's `refusal` lookup (the public-key check) runs
   inside that INSERT: when it finds a row, nothing is recorded and nothing is signed;
3. lint it with pkilint, while the INSERT travels and commits (on PostgreSQL the lint runs between
   sending the statement and reading its answer: `rows.row_insert_unless`). When lint refuses, the
   record is marked `failed` with the findings and nothing is signed;
4. sign it with the CA key once the record is committed, check the TBS bytes are the linted ones;
5. publish and store: the caller's `publish` hook pre-signs the certificate's OCSP response, and
   one transaction marks the record `issued` with the certificate and the findings and inserts
   that response (on PostgreSQL a single statement: one round trip, one commit).

So a crash before step 2 leaves nothing (and nothing was signed); after it, a `recorded` row says
"possibly signed" (revocable, to be safe); an `issued` row is done. The pipeline refuses to run
inside a caller's transaction (the check `atomic(durable=True)` makes): a rollback there must never
lose the record of a certificate we signed. Two commits per certificate: the record, then the store;
the process waits only for the second.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.db import IntegrityError, models, transaction

from certdesk.pki import lint
from certdesk.pki.errors import KeyBackendError, LintFailed, PkiError
from certdesk.pki.keys import CaPrivateKey, CaPublicKey, signature_hash
from certdesk.pki.models import CertificateAuthority, IssuedCertificate
from certdesk.pki.rows import Lookup, row_insert_unless, row_update, row_update_inserting
from certdesk.pki.serials import serial_hex, serial_new
from certdesk.pki.signers import spki_der, spki_sha256

logger = logging.getLogger(__name__)

Status = IssuedCertificate.Status


@dataclass(frozen=True, kw_only=True)
class Subject:
    name: x509.Name
    organisation_name: str = ""
    uscc: str = ""


@dataclass(frozen=True)
class Refusal:
    """Refuse the issuance when `lookup` finds a row; `error(value found)` is raised. Checked by the
    record's INSERT itself (no round trip of its own), so nothing is recorded or signed then."""

    lookup: Lookup
    error: Callable[[Any], PkiError]


@dataclass(frozen=True)
class Issued:
    record: IssuedCertificate
    certificate: x509.Certificate
    findings: tuple[str, ...]


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def _record(
    *,
    issuer: CertificateAuthority,
    profile: str,
    subject: Subject,
    public_key: CaPublicKey,
    serial: int,
    precertificate_der: bytes,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    renewal_of: IssuedCertificate | None,
    reference: str,
    refusal: Refusal | None,
) -> tuple[IssuedCertificate | None, list[lint.LintFinding]]:
    """Write the record (autocommit: one statement, committed by the database) and lint the
    pre-certificate meanwhile. Returns the record (None if the serial is taken) and the findings.
    Raises `refusal.error` when its lookup finds a row."""
    record = IssuedCertificate(
        serial=serial_hex(serial),
        issuer=issuer,
        profile=profile,
        status=Status.RECORDED,
        subject=subject.name.rfc4514_string(),
        organisation_name=subject.organisation_name,
        uscc=subject.uscc,
        public_key_der=spki_der(public_key),
        # The helper the key check's lookup hashes with (services.certificate_issue): the two must agree.
        spki_sha256=spki_sha256(public_key),
        precertificate_der=precertificate_der,
        not_before=not_before,
        not_after=not_after,
        renewal_of=renewal_of,
        reference=reference[:64],
    )
    try:
        found, findings = row_insert_unless(
            record,
            lookup=refusal.lookup if refusal is not None else None,
            meanwhile=lambda: lint.lint_certificate(precertificate_der),
        )
    except IntegrityError:
        # A serial collision (odds 2^-126) draws another serial; any other integrity error is a bug.
        if IssuedCertificate.objects.filter(serial=record.serial).exists():
            return None, []
        raise
    if refusal is not None and found is not None:
        raise refusal.error(found)
    return record, findings


def _refuse_callers_transaction() -> None:
    """The check `atomic(durable=True)` makes, without opening a transaction (an empty atomic block
    would still BEGIN IMMEDIATE on SQLite and take the write lock). Test-case transactions are allowed,
    as Django allows them for durable blocks."""
    blocks = transaction.get_connection().atomic_blocks
    if blocks and not getattr(blocks[-1], "_from_testcase", False):
        raise RuntimeError(
            "certificate issuance commits each step on its own and cannot run inside an atomic block "
            "(it is durable): call it outside the caller's transaction"
        )


def _mark(record: IssuedCertificate, *, expect: str, inserting: models.Model | None = None, **fields: object) -> None:
    """One conditional UPDATE of the record, and the INSERT of `inserting` with it when given
    (committed by itself, or with the caller's transaction)."""
    where = {"status": expect}
    if inserting is None:
        written = row_update(IssuedCertificate, pk=record.pk, where=where, values=fields)
    else:
        written = row_update_inserting(IssuedCertificate, pk=record.pk, where=where, values=fields, insert=inserting)
    if not written:
        raise PkiError(f"证书记录 {record.serial} 的状态已被改变，签发中止。", code="record_conflict")
    for name, value in written.items():
        setattr(record, name, value)


def issue(
    *,
    issuer: CertificateAuthority,
    signing_key: CaPrivateKey,
    profile: str,
    subject: Subject,
    public_key: CaPublicKey,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    make_builder: Callable[[int], x509.CertificateBuilder],
    renewal_of: IssuedCertificate | None = None,
    reference: str = "",
    publish: Callable[[IssuedCertificate, x509.Certificate], models.Model | None] | None = None,
    refusal: Refusal | None = None,
) -> Issued:
    """Record, lint, sign, publish, store. `make_builder(serial)` returns the complete builder;
    `publish(record, certificate)` returns a row to insert with the store (or None)."""
    _refuse_callers_transaction()
    lint_key = lint.lint_signing_key(signing_key)
    for _attempt in range(5):
        serial = serial_new()
        builder = make_builder(serial)
        precertificate = builder.sign(lint_key, signature_hash(lint_key))
        record, findings = _record(
            issuer=issuer,
            profile=profile,
            subject=subject,
            public_key=public_key,
            serial=serial,
            precertificate_der=_der(precertificate),
            not_before=not_before,
            not_after=not_after,
            renewal_of=renewal_of,
            reference=reference,
            refusal=refusal,
        )
        if record is not None:
            break
    else:
        raise PkiError("无法分配唯一的证书序列号。", code="serial_exhausted")
    stored_findings = [str(f) for f in findings]

    def mark(status: str, *, inserting: models.Model | None = None, **fields: object) -> None:
        # Every step after the record leaves it with the lint's findings.
        _mark(
            record, expect=Status.RECORDED, inserting=inserting, status=status, lint_findings=stored_findings, **fields
        )

    refusing = [str(f) for f in lint.blocking(findings)]
    if refusing:
        mark(Status.FAILED, failure_reason="lint: " + "; ".join(refusing))
        raise LintFailed(
            f"证书 {record.serial} 未通过 pkilint 检查，拒绝签发：" + "；".join(refusing), findings=refusing
        )

    try:
        certificate = builder.sign(signing_key, signature_hash(signing_key))
    except Exception as exc:
        mark(Status.FAILED, failure_reason=f"signing failed: {exc!r}")
        if isinstance(exc, PkiError):
            raise
        raise KeyBackendError(f"CA 密钥签名失败：{exc}", code="signing_failed") from exc
    if certificate.tbs_certificate_bytes != precertificate.tbs_certificate_bytes:
        # Never expected; keep the signed bytes for the investigation, publish nothing.
        mark(Status.FAILED, certificate_der=_der(certificate), failure_reason="signed TBS differs from the linted TBS")
        raise PkiError(f"证书 {record.serial} 签名后的内容与检查过的内容不一致，已作废。", code="tbs_mismatch")

    published = publish(record, certificate) if publish is not None else None
    mark(Status.ISSUED, inserting=published, certificate_der=_der(certificate))
    return Issued(record=record, certificate=certificate, findings=tuple(record.lint_findings))
