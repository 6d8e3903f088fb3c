"""Revocation (RFC 5280 reasons, hold and unhold) and the CRL it publishes at once."""

from __future__ import annotations

import datetime
from io import StringIO
from pathlib import Path

import pytest
from cryptography import x509
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from pkitestlib import issue, lint_errors, openssl, served_chain, utcnow, write
from pytest_django.fixtures import Settings

from certdesk.pki import lint
from certdesk.pki.errors import CertificateNotFound, RevocationRefused
from certdesk.pki.models import CertificateAuthority, Crl, IssuedCertificate
from certdesk.pki.selectors import certificate_status_get
from certdesk.pki.services import (
    HierarchyInitResult,
    certificate_revoke,
    certificate_unhold,
    crl_generate,
)
from certdesk.pki.tasks import pki_refresh
from certdesk.pki.types import RevocationReason


def _served_crl(client: Client) -> x509.CertificateRevocationList:
    response = client.get("/pki/crl/issuing.crl")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pkix-crl"
    return x509.load_der_x509_crl(response.content)


def test_revocation_publishes_a_new_crl_that_openssl_reads(
    ca: HierarchyInitResult, client: Client, tmp_path: Path
) -> None:
    keep = issue()
    gone = issue()
    before = _served_crl(client)
    invalid_since = utcnow().replace(microsecond=0) - datetime.timedelta(days=2)
    info = certificate_revoke(serial=gone.serial, reason=RevocationReason.KEY_COMPROMISE, invalidity_date=invalid_since)
    assert info.status == "revoked" and info.revocation_reason is RevocationReason.KEY_COMPROMISE
    assert info.revoked_at is not None

    response = client.get("/pki/crl/issuing.crl")
    assert "max-age=" in response["Cache-Control"] and response["Last-Modified"] and response["Expires"]
    crl = x509.load_der_x509_crl(response.content)
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number == before.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
    assert crl.next_update_utc is not None and crl.last_update_utc is not None
    assert crl.next_update_utc - crl.last_update_utc == datetime.timedelta(hours=24)
    entry = crl.get_revoked_certificate_by_serial_number(int(gone.serial, 16))
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    assert entry.extensions.get_extension_for_class(x509.InvalidityDate).value.invalidity_date_utc == invalid_since
    assert entry.revocation_date_utc == info.revoked_at
    assert crl.get_revoked_certificate_by_serial_number(int(keep.serial, 16)) is None
    assert lint_errors(lint.lint_crl(response.content)) == []

    issuing = x509.load_der_x509_certificate(bytes(ca.issuing.certificate_der or b""))
    assert crl.is_signature_valid(issuing.public_key())  # type: ignore[arg-type]
    crl_file = write(tmp_path / "issuing.crl", response.content)
    text = openssl("crl", "-inform", "DER", "-in", crl_file, "-noout", "-text").stdout
    assert gone.serial in text.replace(":", "").upper()
    assert "Key Compromise" in text

    # openssl verify with CRL checking: the revoked certificate fails, the other passes.
    root_pem, issuing_pem = served_chain(client, tmp_path)
    crl_pem = tmp_path / "issuing-crl.pem"
    openssl("crl", "-inform", "DER", "-in", crl_file, "-out", crl_pem)
    good = write(tmp_path / "good.pem", keep.certificate_pem)
    bad = write(tmp_path / "bad.pem", gone.certificate_pem)
    assert (
        "OK"
        in openssl(
            "verify", "-crl_check", "-CAfile", root_pem, "-untrusted", issuing_pem, "-CRLfile", crl_pem, good
        ).stdout
    )
    result = openssl(
        "verify", "-crl_check", "-CAfile", root_pem, "-untrusted", issuing_pem, "-CRLfile", crl_pem, bad, check=False
    )
    assert result.returncode != 0 and "certificate revoked" in (result.stdout + result.stderr)
    # The whole chain, with the root's CRL (served too) checking the issuing CA.
    root_crl = write(tmp_path / "root.crl", client.get("/pki/crl/root.crl").content)
    both = write(
        tmp_path / "both-crls.pem", crl_pem.read_text() + openssl("crl", "-inform", "DER", "-in", root_crl).stdout
    )
    full = ("-crl_check_all", "-CAfile", root_pem, "-untrusted", issuing_pem, "-CRLfile", both)
    assert "OK" in openssl("verify", *full, good).stdout


def test_unspecified_reason_leaves_the_reason_code_out(ca: HierarchyInitResult) -> None:
    cert = issue()
    certificate_revoke(serial=cert.serial, reason=RevocationReason.UNSPECIFIED)
    latest = Crl.objects.filter(issuer=ca.issuing).order_by("-number").first()
    assert latest is not None
    entry = x509.load_der_x509_crl(bytes(latest.der)).get_revoked_certificate_by_serial_number(int(cert.serial, 16))
    assert entry is not None and len(entry.extensions) == 0


def test_hold_can_be_lifted_and_nothing_else_can(ca: HierarchyInitResult, client: Client) -> None:
    cert = issue()
    serial = int(cert.serial, 16)
    certificate_revoke(serial=cert.serial, reason=RevocationReason.CERTIFICATE_HOLD)
    entry = _served_crl(client).get_revoked_certificate_by_serial_number(serial)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.certificate_hold
    with pytest.raises(RevocationRefused) as exc:
        certificate_revoke(serial=cert.serial, reason=RevocationReason.CERTIFICATE_HOLD)
    assert exc.value.code == "already_revoked"

    info = certificate_unhold(serial=cert.serial)
    assert info.status == "issued" and info.revoked_at is None
    assert _served_crl(client).get_revoked_certificate_by_serial_number(serial) is None
    with pytest.raises(RevocationRefused) as exc:
        certificate_unhold(serial=cert.serial)
    assert exc.value.code == "not_on_hold"

    # A hold may become final (keeping the date it was held); a final revocation cannot be undone.
    held = certificate_revoke(serial=cert.serial, reason=RevocationReason.CERTIFICATE_HOLD)
    final = certificate_revoke(serial=cert.serial, reason=RevocationReason.CESSATION_OF_OPERATION)
    assert final.revoked_at == held.revoked_at
    assert final.revocation_reason is RevocationReason.CESSATION_OF_OPERATION
    with pytest.raises(RevocationRefused) as exc:
        certificate_unhold(serial=cert.serial)
    assert exc.value.code == "not_on_hold"
    for reason in (RevocationReason.KEY_COMPROMISE, RevocationReason.CERTIFICATE_HOLD):
        with pytest.raises(RevocationRefused) as exc:
            certificate_revoke(serial=cert.serial, reason=reason)
        assert exc.value.code == "already_revoked"


def test_revocation_refusals(ca: HierarchyInitResult) -> None:
    cert = issue()
    with pytest.raises(RevocationRefused) as exc:
        certificate_revoke(serial=cert.serial, reason=RevocationReason.REMOVE_FROM_CRL)
    assert exc.value.code == "reason_invalid"
    with pytest.raises(RevocationRefused) as exc:
        certificate_revoke(
            serial=cert.serial,
            reason=RevocationReason.KEY_COMPROMISE,
            invalidity_date=utcnow() + datetime.timedelta(days=1),
        )
    assert exc.value.code == "invalidity_date_invalid"
    with pytest.raises(CertificateNotFound) as exc_nf:
        certificate_revoke(serial="0BADC0FFEE", reason=RevocationReason.SUPERSEDED)
    assert exc_nf.value.code == "certificate_not_found"
    with pytest.raises(CertificateNotFound) as exc_nf:
        certificate_revoke(serial="not-hex!", reason=RevocationReason.SUPERSEDED)
    assert exc_nf.value.code == "serial_invalid"
    IssuedCertificate.objects.filter(serial=cert.serial).update(status="failed")
    with pytest.raises(RevocationRefused) as exc:
        certificate_revoke(serial=cert.serial, reason=RevocationReason.SUPERSEDED)
    assert exc.value.code == "not_issued"
    # Serial spelling does not matter.
    other = issue()
    formatted = ":".join(other.serial[i : i + 2] for i in range(0, len(other.serial), 2)).lower()
    assert certificate_revoke(serial=formatted, reason=RevocationReason.AFFILIATION_CHANGED).serial == other.serial
    assert certificate_status_get(serial="0x" + other.serial.lower()).status == "revoked"


def test_revocation_reason_names() -> None:
    assert RevocationReason.parse("keyCompromise") is RevocationReason.KEY_COMPROMISE
    assert RevocationReason.parse("key-compromise") is RevocationReason.KEY_COMPROMISE
    assert RevocationReason.parse("cACompromise") is RevocationReason.CA_COMPROMISE
    assert RevocationReason.parse(6) is RevocationReason.CERTIFICATE_HOLD
    assert RevocationReason.CA_COMPROMISE.rfc_name == "cACompromise"
    with pytest.raises(ValueError, match="unknown revocation reason"):
        RevocationReason.parse("stolen")


def test_revoke_unhold_and_crl_commands(ca: HierarchyInitResult, tmp_path: Path) -> None:
    cert = issue()
    out = StringIO()
    call_command("pki_revoke", "--serial", cert.serial, "--reason", "certificateHold", stdout=out)
    assert f"revoked {cert.serial}" in out.getvalue()
    out = StringIO()
    call_command("pki_unhold", "--serial", cert.serial, stdout=out)
    assert "hold lifted" in out.getvalue()
    call_command(
        "pki_revoke",
        "--serial",
        cert.serial,
        "--reason",
        "superseded",
        "--invalidity-date",
        "2026-01-01T00:00:00+08:00",
        stdout=StringIO(),
    )
    with pytest.raises(CommandError, match="already_revoked"):
        call_command("pki_revoke", "--serial", cert.serial, "--reason", "keyCompromise", stdout=StringIO())
    with pytest.raises(CommandError, match="unknown revocation reason"):
        call_command("pki_revoke", "--serial", cert.serial, "--reason", "lost", stdout=StringIO())

    der_file = tmp_path / "issuing.crl"
    out = StringIO()
    call_command("pki_crl", "--out", der_file, stdout=out)
    assert "1 entries" in out.getvalue()
    text = openssl("crl", "-inform", "DER", "-in", der_file, "-noout", "-text").stdout
    assert cert.serial in text.replace(":", "").upper() and "Superseded" in text
    pem_file = tmp_path / "root.crl.pem"
    call_command("pki_crl", "--root", "--pem", "--out", pem_file, stdout=StringIO())
    assert "Certificate Revocation List" in openssl("crl", "-in", pem_file, "-noout", "-text").stdout


def test_root_crl_is_served_and_clean(ca: HierarchyInitResult, client: Client) -> None:
    response = client.get("/pki/crl/root.crl")
    assert response.status_code == 200
    crl = x509.load_der_x509_crl(response.content)
    assert crl.issuer == x509.load_der_x509_certificate(bytes(ca.root.certificate_der or b"")).subject
    assert crl.next_update_utc is not None and crl.last_update_utc is not None
    assert crl.next_update_utc - crl.last_update_utc == datetime.timedelta(days=30)
    assert lint_errors(lint.lint_crl(response.content)) == []
    assert client.get("/pki/crl/other.crl").status_code == 404


def test_crl_numbers_increase_and_validity_is_configurable(ca: HierarchyInitResult, settings: Settings) -> None:
    settings.PKI_CRL_VALIDITY_HOURS = 6
    first = crl_generate()
    second = crl_generate()
    assert second.number == first.number + 1
    assert second.next_update - second.this_update == datetime.timedelta(hours=6)
    issuing = CertificateAuthority.objects.get(pk=ca.issuing.pk)
    assert issuing.crl_number == second.number and issuing.next_crl_update == second.next_update


def test_periodic_refresh_regenerates_due_crls(ca: HierarchyInitResult) -> None:
    CertificateAuthority.objects.filter(pk=ca.issuing.pk).update(next_crl_update=utcnow() + datetime.timedelta(hours=1))
    before = CertificateAuthority.objects.get(pk=ca.issuing.pk).crl_number
    result = pki_refresh.enqueue()  # the test settings run tasks immediately
    assert result.status == "SUCCESSFUL", result.errors
    assert result.return_value is not None and result.return_value["crls"] == 1
    assert CertificateAuthority.objects.get(pk=ca.issuing.pk).crl_number == before + 1
    # Not due any more: a second run leaves the CRL alone.
    assert pki_refresh.enqueue().return_value["crls"] == 0  # type: ignore[index]


def test_periodic_refresh_keeps_exactly_one_schedule(ca: HierarchyInitResult, settings: Settings) -> None:
    from django_tasks import task_backends

    from certdesk.pki.tasks import pki_refresh_schedule

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    backend = task_backends["default"]
    now = utcnow()
    first = pki_refresh_schedule(now=now)
    assert first is not None and first > now
    assert pki_refresh_schedule(now=now) is None  # already scheduled: no second chain
    assert len(backend.results) == 1  # type: ignore[attr-defined]
    assert backend.results[0].task.run_after == first  # type: ignore[attr-defined]
    # When that run comes due it claims the slot again and schedules the next one.
    assert pki_refresh_schedule(now=first) is not None
    assert len(backend.results) == 2  # type: ignore[attr-defined]


def test_large_crls_are_linted_on_a_sample(
    ca: HierarchyInitResult, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.PKI_CRL_LINT_MAX_ENTRIES = 2
    linted: list[int] = []
    real_lint_crl = lint.lint_crl

    def spy(der: bytes) -> list[lint.LintFinding]:
        linted.append(len(x509.load_der_x509_crl(der)))
        return real_lint_crl(der)

    monkeypatch.setattr(lint, "lint_crl", spy)
    reasons = [RevocationReason.SUPERSEDED] * 3 + [RevocationReason.KEY_COMPROMISE, RevocationReason.UNSPECIFIED]
    for reason in reasons:
        certificate_revoke(serial=issue().serial, reason=reason)
    latest = Crl.objects.filter(issuer=ca.issuing).order_by("-number").first()
    assert latest is not None and latest.entries == 5
    # Two newest entries plus one of each other shape (superseded): 3 of 5 linted; the published CRL is whole.
    assert linted[-1] == 3
    assert len(x509.load_der_x509_crl(bytes(latest.der))) == 5
    assert lint_errors(real_lint_crl(bytes(latest.der))) == []
