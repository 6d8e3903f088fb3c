"""pki_init: root and issuing CA, OCSP signer, first CRLs; idempotent; never overwrites a key."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from pkitestlib import issue, lint_errors, load_pem, openssl, served_chain, write
from pytest_django.fixtures import Settings

from certdesk.pki import lint
from certdesk.pki.errors import CaNotInitialised, KeyExists
from certdesk.pki.keys import KeyAlgorithm, key_backend
from certdesk.pki.models import CertificateAuthority, Crl, IssuedCertificate
from certdesk.pki.services import HierarchyInitResult, ca_hierarchy_init


def test_hierarchy_is_created_once_and_served(ca: HierarchyInitResult, client: Client, tmp_path: Path) -> None:
    assert set(ca.created) >= {"root-ca", "issuing-ca", "crl:root-ca", "crl:issuing-ca"}
    assert ca.root.key_backend == ca.issuing.key_backend
    again = ca_hierarchy_init()
    assert again.created == ()
    assert (
        again.root.pk == ca.root.pk and again.issuing.pk == ca.issuing.pk and again.ocsp_signer.pk == ca.ocsp_signer.pk
    )
    assert CertificateAuthority.objects.count() == 3

    root_pem, issuing_pem = served_chain(client, tmp_path)
    root = x509.load_pem_x509_certificate(root_pem.read_bytes())
    issuing = x509.load_pem_x509_certificate(issuing_pem.read_bytes())
    assert root.subject == root.issuer
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert issuing.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    ku = issuing.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature
    assert "OK" in openssl("verify", "-CAfile", root_pem, issuing_pem).stdout
    # Every certificate our keys signed has a record, the CA certificates included.
    assert IssuedCertificate.objects.filter(status="issued").count() == 3
    for der in (root, issuing):
        assert lint_errors(lint.lint_certificate(der.public_bytes(serialization.Encoding.DER))) == []
    assert Crl.objects.count() == 2


def test_ca_files_are_404_before_init(db: None, client: Client) -> None:
    assert client.get("/pki/ca/issuing.crt").status_code == 404
    assert client.get("/pki/crl/issuing.crl").status_code == 404
    with pytest.raises(CaNotInitialised) as exc:
        issue()
    assert exc.value.code == "ca_not_initialised"


def test_refuses_to_overwrite_a_key_it_does_not_know(db: None, ca_backend: str) -> None:
    key_backend().generate(key_ref="root-ca", algorithm=KeyAlgorithm.EC_P256)
    with pytest.raises(KeyExists) as exc:
        ca_hierarchy_init()
    assert exc.value.code == "key_exists"
    assert "拒绝覆盖" in exc.value.message
    assert not CertificateAuthority.objects.exists()


def test_resumes_after_a_crash_between_key_and_certificate(db: None, ca_backend: str) -> None:
    # A previous run wrote the row and generated the key, then died before signing.
    CertificateAuthority.objects.create(
        name="root-ca", role="root", key_backend=ca_backend, key_ref="root-ca", key_algorithm="ec-p256"
    )
    key = key_backend().generate(key_ref="root-ca", algorithm=KeyAlgorithm.EC_P256)
    result = ca_hierarchy_init()
    root = x509.load_der_x509_certificate(bytes(result.root.certificate_der or b""))
    assert root.public_key() == key.public_key()
    assert result.root.status == "active"


@pytest.mark.parametrize("algorithm", ["rsa-2048"])
def test_rsa_hierarchy(db: None, ca_backend: str, algorithm: str, client: Client, tmp_path: Path) -> None:
    result = ca_hierarchy_init(algorithm=algorithm)
    assert result.issuing.key_algorithm == algorithm
    issued = issue()
    certificate = load_pem(issued.certificate_pem)
    assert certificate.signature_algorithm_oid.dotted_string == "1.2.840.113549.1.1.11"  # sha256WithRSAEncryption
    root_pem, issuing_pem = served_chain(client, tmp_path)
    assert isinstance(x509.load_pem_x509_certificate(root_pem.read_bytes()).public_key(), rsa.RSAPublicKey)
    leaf = write(tmp_path / "leaf.pem", issued.certificate_pem)
    assert "OK" in openssl("verify", "-CAfile", root_pem, "-untrusted", issuing_pem, leaf).stdout


def test_p384_hierarchy_signs_with_sha384(db: None, settings: Settings) -> None:
    settings.PKI_KEY_ALGORITHM = "ec-p384"
    ca_hierarchy_init()
    certificate = load_pem(issue().certificate_pem)
    assert certificate.signature_algorithm_oid.dotted_string == "1.2.840.10045.4.3.3"  # ecdsa-with-SHA384


def test_pki_init_and_pki_show_commands(db: None, ca_backend: str) -> None:
    out = StringIO()
    call_command("pki_init", stdout=out, stderr=StringIO())
    assert "created: root-ca, issuing-ca" in out.getvalue()
    out = StringIO()
    call_command("pki_init", stdout=out, stderr=StringIO())
    assert "already initialised" in out.getvalue()
    issue()
    out = StringIO()
    call_command("pki_show", stdout=out)
    text = out.getvalue()
    assert "root-ca" in text and "issuing-ca" in text and "next update" in text
    assert "issued 4" in text
    assert f"{ca_backend}:issuing-ca" in text


def test_pki_init_rejects_unknown_algorithm(db: None) -> None:
    with pytest.raises(CommandError):
        call_command("pki_init", "--algorithm", "dsa-1024", stdout=StringIO(), stderr=StringIO())


def test_no_secret_is_stored_in_the_database(db: None, ca_backend: str, settings: Settings) -> None:
    from django.db import connection

    ca_hierarchy_init()
    issue()
    secrets = [str(settings.PKI_KEY_PASSPHRASE)]
    if ca_backend == "pkcs11":
        secrets.append(str(settings.PKI_PKCS11_PIN))
    with connection.cursor() as cursor:
        for table in ("pki_certificateauthority", "pki_issuedcertificate", "pki_crl", "pki_ocspresponse"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
            for row in cursor.fetchall():
                blob = b"|".join(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row)
                for secret in secrets:
                    assert secret.encode() not in blob, f"{secret!r} found in {table}"
