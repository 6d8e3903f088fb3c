"""What the CA engine stores.

No secret is ever stored here: a CA row names its key backend and a key
reference (a file name or a token label); passphrases and PINs come from
settings. Every certificate any of our keys signs, CA and OCSP-signer
certificates included, has an `IssuedCertificate` row written *before* it is
signed (status `recorded`), so a crash leaves a record that says how far
issuance got and never an unrecorded certificate.
"""

from __future__ import annotations

from django.db import models

from certdesk.pki.types import RevocationReason


class CertificateAuthority(models.Model):
    """A key of ours that signs: the root, an issuing CA, or a delegated OCSP responder."""

    class Role(models.TextChoices):
        ROOT = "root", "根 CA"
        ISSUING = "issuing", "签发 CA"
        OCSP = "ocsp", "OCSP 签名者"

    class Status(models.TextChoices):
        # PENDING: row and key reference written, certificate not yet signed (pki_init resumes it).
        PENDING = "pending", "创建中"
        ACTIVE = "active", "在用"
        RETIRED = "retired", "已停用"

    name = models.CharField(max_length=64, unique=True)
    role = models.CharField(max_length=16, choices=Role.choices, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    key_backend = models.CharField(max_length=16)
    key_ref = models.CharField(max_length=128)
    key_algorithm = models.CharField(max_length=16)
    certificate_der = models.BinaryField(null=True, blank=True)
    serial = models.CharField(max_length=64, blank=True)
    subject = models.CharField(max_length=512, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    not_after = models.DateTimeField(null=True, blank=True)
    # SHA-1 of the subject DER and of the public key BIT STRING: how OCSP CertIDs name an issuer.
    name_sha1 = models.CharField(max_length=40, blank=True)
    key_sha1 = models.CharField(max_length=40, blank=True, db_index=True)
    crl_number = models.BigIntegerField(default=0)
    next_crl_update = models.DateTimeField(null=True, blank=True)
    refresh_scheduled_for = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "CA 密钥"
        verbose_name_plural = "CA 密钥"

    def __str__(self) -> str:
        return f"{self.name} ({self.get_role_display()}, {self.get_status_display()})"


class IssuedCertificate(models.Model):
    class Status(models.TextChoices):
        # Recorded before lint (serial reserved, to-be-signed certificate stored). Signed only once the
        # lint passed, and stored `issued` after that: after a crash, possibly signed.
        RECORDED = "recorded", "已记录"
        ISSUED = "issued", "已签发"  # signed and stored
        FAILED = "failed", "失败"  # refused (lint) or failed before signing; never signed

    # Indexes: only what a query reads (see Meta). Each index is written on every insert, and the
    # store step's UPDATE touches no indexed column, so PostgreSQL can make it a HOT update.
    serial = models.CharField(max_length=64)
    issuer = models.ForeignKey(CertificateAuthority, on_delete=models.PROTECT, related_name="issued", db_index=False)
    profile = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECORDED)
    subject = models.CharField(max_length=1024)
    organisation_name = models.CharField(max_length=128, blank=True)
    uscc = models.CharField(max_length=18, blank=True)
    public_key_der = models.BinaryField()
    spki_sha256 = models.CharField(max_length=64)
    # The to-be-signed certificate, carried in a certificate signed by a throwaway
    # key of the CA key's type: what lint saw. The final certificate must have the same TBS bytes.
    precertificate_der = models.BinaryField()
    lint_findings = models.JSONField(default=list, blank=True)
    certificate_der = models.BinaryField(null=True, blank=True)
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    renewal_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="renewals", db_index=False
    )
    failure_reason = models.TextField(blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revocation_reason = models.PositiveSmallIntegerField(
        null=True, blank=True, choices=[(r.value, r.rfc_name) for r in RevocationReason]
    )
    invalidity_date = models.DateTimeField(null=True, blank=True)
    # Bumped by every revocation and unhold; OCSP responses carry the version they were signed from.
    status_version = models.PositiveIntegerField(default=0)
    reference = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "证书"
        verbose_name_plural = "证书"
        constraints = [models.UniqueConstraint(fields=["serial"], name="pki_cert_serial_unique")]
        indexes = [
            # The CRL's rows; also serves the issuer foreign key.
            models.Index(fields=["issuer", "revoked_at"], name="pki_cert_issuer_revoked"),
            # The key checks at issuance (keyCompromise, our own keys) and the RA's crash recovery.
            models.Index(fields=["spki_sha256"], name="pki_cert_spki"),
            # Staff looking up an organisation's certificates.
            models.Index(fields=["uscc"], name="pki_cert_uscc"),
            # SET NULL when a renewed certificate's row is deleted; most rows have no renewal_of.
            models.Index(
                fields=["renewal_of"], name="pki_cert_renewal_of", condition=models.Q(renewal_of__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.serial} {self.subject} ({self.get_status_display()})"


class Crl(models.Model):
    issuer = models.ForeignKey(CertificateAuthority, on_delete=models.PROTECT, related_name="crls")
    number = models.BigIntegerField()
    der = models.BinaryField()
    this_update = models.DateTimeField()
    next_update = models.DateTimeField()
    entries = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "CRL"
        verbose_name_plural = "CRL"
        constraints = [models.UniqueConstraint(fields=["issuer", "number"], name="pki_crl_issuer_number")]

    def __str__(self) -> str:
        return f"CRL #{self.number} of {self.issuer_id}"


class OcspResponse(models.Model):
    """A pre-signed OCSP response, shared by every web worker through the database.

    The responder's hot path is one indexed read of this table; signing happens
    at issuance, at revocation, in the periodic refresh, or (for a nonce, an
    unknown serial, or a cache miss) on the request itself.
    """

    serial = models.CharField(max_length=64)
    hash_algorithm = models.CharField(max_length=8)  # of the request's CertID: sha1, sha256, …
    issuer = models.ForeignKey(CertificateAuthority, on_delete=models.CASCADE, related_name="+")
    der = models.BinaryField()
    this_update = models.DateTimeField()
    next_update = models.DateTimeField(db_index=True)
    status_version = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "OCSP 响应"
        verbose_name_plural = "OCSP 响应"
        constraints = [models.UniqueConstraint(fields=["serial", "hash_algorithm"], name="pki_ocsp_serial_hash")]

    def __str__(self) -> str:
        return f"OCSP {self.serial} ({self.hash_algorithm})"
