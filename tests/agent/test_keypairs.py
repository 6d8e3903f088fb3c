"""Key pairs made on the key, CSRs signed on the key, certificates imported and replaced."""

from __future__ import annotations

import pkcs11
import pytest
from certdesk_agent.drivers.pkcs11 import Pkcs11Driver
from certdesk_agent.errors import DeleteRefused, KeyCannotSign, KeyPairNotFound, WrongPin
from certdesk_agent.types import (
    ORGANIZATION_IDENTIFIER,
    KeyAlgorithm,
    KeyRole,
    key_id_for,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pkcs11 import Attribute, ObjectClass

from tests.agent.certs import ORG, SUBJECT, USCC, ThrowawayCa, enrol
from tests.agent.softhsm import SOFTHSM_MODULE, EmulatedKey


def _objects(sn: str, pin: str, attrs: dict[Attribute, object]) -> list[dict[Attribute, object]]:
    """The listed attributes of every matching object, read in a logged-in session."""
    token = pkcs11.lib(SOFTHSM_MODULE).get_token(token_label=sn)
    with token.open(user_pin=pin) as session:
        return [
            {a: obj[a] for a in (Attribute.CLASS, Attribute.ID, Attribute.LABEL)} for obj in session.get_objects(attrs)
        ]


def test_a_key_pair_made_on_the_key_is_sensitive_and_never_extractable(driver: Pkcs11Driver, key: EmulatedKey) -> None:
    pair = driver.generate_key_pair(key.sn, pin=key.user_pin)

    assert (pair.role, pair.algorithm, pair.can_sign) == (KeyRole.SIGN, KeyAlgorithm.EC_P256, True)
    assert pair.key_id == key_id_for(pair.public_key)
    token = pkcs11.lib(SOFTHSM_MODULE).get_token(token_label=key.sn)
    with token.open(rw=True, user_pin=key.user_pin) as session:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=pair.key_id)
        public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, id=pair.key_id)
        assert private[Attribute.TOKEN] and private[Attribute.PRIVATE]
        assert private[Attribute.SENSITIVE] and private[Attribute.ALWAYS_SENSITIVE]
        assert not private[Attribute.EXTRACTABLE] and private[Attribute.NEVER_EXTRACTABLE]
        assert private[Attribute.LOCAL]  # generated on the token, not imported
        assert private[Attribute.LABEL] == public[Attribute.LABEL] == "certdesk-sign"
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            private[Attribute.VALUE]
        with pytest.raises(pkcs11.exceptions.AttributeReadOnly):
            private[Attribute.EXTRACTABLE] = True


def test_a_signing_and_an_encryption_pair_coexist(driver: Pkcs11Driver, key: EmulatedKey) -> None:
    sign = driver.generate_key_pair(key.sn, pin=key.user_pin, role=KeyRole.SIGN)
    enc = driver.generate_key_pair(key.sn, pin=key.user_pin, role=KeyRole.ENC)

    pairs = {p.key_id: p for p in driver.list_key_pairs(key.sn, pin=key.user_pin)}

    assert set(pairs) == {sign.key_id, enc.key_id}
    assert (pairs[sign.key_id].role, pairs[sign.key_id].can_sign) == (KeyRole.SIGN, True)
    assert (pairs[enc.key_id].role, pairs[enc.key_id].can_sign) == (KeyRole.ENC, False)
    with pytest.raises(KeyCannotSign):
        driver.create_csr(key.sn, pin=key.user_pin, key_id=enc.key_id, subject=SUBJECT)


def test_key_pair_operations_need_the_right_pin(driver: Pkcs11Driver, key: EmulatedKey) -> None:
    with pytest.raises(WrongPin) as excinfo:
        driver.generate_key_pair(key.sn, pin="00000000")
    assert excinfo.value.tries_left == 5
    assert driver.list_key_pairs(key.sn, pin=key.user_pin) == []


def test_a_csr_signed_on_the_key_verifies_and_carries_the_subject(driver: Pkcs11Driver, key: EmulatedKey) -> None:
    pair = driver.generate_key_pair(key.sn, pin=key.user_pin)

    csr = driver.create_csr(key.sn, pin=key.user_pin, key_id=pair.key_id, subject=SUBJECT)

    assert csr.is_signature_valid
    assert csr.signature_hash_algorithm is not None and csr.signature_hash_algorithm.name == "sha256"
    assert csr.public_key() == pair.public_key
    subject = csr.subject
    assert subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "CN"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == ORG
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == ORG
    assert subject.get_attributes_for_oid(ORGANIZATION_IDENTIFIER)[0].value == f"NTRCN-{USCC}"


def test_an_rsa_2048_key_pair_and_csr(driver: Pkcs11Driver, key: EmulatedKey) -> None:
    pair = driver.generate_key_pair(key.sn, pin=key.user_pin, algorithm=KeyAlgorithm.RSA_2048)
    assert isinstance(pair.public_key, rsa.RSAPublicKey) and pair.public_key.key_size == 2048

    csr = driver.create_csr(key.sn, pin=key.user_pin, key_id=pair.key_id, subject=SUBJECT)

    assert csr.is_signature_valid
    assert csr.public_key() == pair.public_key


def test_an_imported_certificate_sits_next_to_its_private_key(
    driver: Pkcs11Driver, key: EmulatedKey, ca: ThrowawayCa
) -> None:
    pair, certificate = enrol(driver, key, ca)

    with pkcs11.lib(SOFTHSM_MODULE).get_token(token_label=key.sn).open(user_pin=key.user_pin) as session:
        (cert_obj,) = session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.ID: pair.key_id})
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=pair.key_id)
        assert bytes(cert_obj[Attribute.ID]) == bytes(private[Attribute.ID]) == pair.key_id
        assert cert_obj[Attribute.LABEL] == private[Attribute.LABEL] == "certdesk-sign"
        assert bytes(cert_obj[Attribute.VALUE]) == certificate.public_bytes(serialization.Encoding.DER)
        assert cert_obj[Attribute.PRIVATE] is False  # readable without a PIN, like on any USB key

    listed = driver.get_key(key.sn)
    (user_cert,) = listed.user_certificates
    assert user_cert.serial_hex == format(certificate.serial_number, "x")
    assert user_cert.not_after == certificate.not_valid_after_utc
    assert user_cert.key_id == pair.key_id
    assert f"NTRCN-{USCC}" in user_cert.subject and user_cert.common_name == ORG
    assert [c.common_name for c in listed.certificates if c.is_ca] == ["Test CA"]
    paired = driver.list_key_pairs(key.sn, pin=key.user_pin)
    assert [p.certificate.serial_hex if p.certificate else None for p in paired] == [user_cert.serial_hex]

    # Importing the same certificate and chain again changes nothing.
    driver.import_certificate(key.sn, pin=key.user_pin, certificate=certificate, chain=[ca.certificate])
    assert len(driver.get_key(key.sn).certificates) == 2


def test_a_certificate_for_a_key_that_is_not_on_the_key_is_refused(
    driver: Pkcs11Driver, key: EmulatedKey, ca: ThrowawayCa
) -> None:
    elsewhere = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(SUBJECT.to_name()).sign(elsewhere, hashes.SHA256())
    with pytest.raises(KeyPairNotFound, match="没有与该证书公钥匹配的私钥"):
        driver.import_certificate(key.sn, pin=key.user_pin, certificate=ca.issue(csr))
    assert driver.get_key(key.sn).certificates == ()


def test_the_old_pair_is_deleted_only_after_the_new_one_holds_a_certificate(
    driver: Pkcs11Driver, key: EmulatedKey, ca: ThrowawayCa
) -> None:
    old, old_cert = enrol(driver, key, ca, days=30)
    new = driver.generate_key_pair(key.sn, pin=key.user_pin)

    with pytest.raises(DeleteRefused):
        driver.delete_key_pair(key.sn, pin=key.user_pin, key_id=old.key_id)
    with pytest.raises(DeleteRefused, match="还没有证书"):
        driver.delete_key_pair(key.sn, pin=key.user_pin, key_id=old.key_id, replaced_by=new.key_id)

    new_cert = ca.issue(driver.create_csr(key.sn, pin=key.user_pin, key_id=new.key_id, subject=SUBJECT))
    driver.import_certificate(key.sn, pin=key.user_pin, certificate=new_cert, chain=[ca.certificate])
    driver.delete_key_pair(key.sn, pin=key.user_pin, key_id=old.key_id, replaced_by=new.key_id)

    assert [p.key_id for p in driver.list_key_pairs(key.sn, pin=key.user_pin)] == [new.key_id]
    assert _objects(key.sn, key.user_pin, {Attribute.ID: old.key_id}) == []
    assert [c.serial_hex for c in driver.get_key(key.sn).user_certificates] == [format(new_cert.serial_number, "x")]
    assert old_cert.serial_number != new_cert.serial_number


def test_a_pair_without_a_certificate_can_be_deleted(driver: Pkcs11Driver, key: EmulatedKey) -> None:
    pair = driver.generate_key_pair(key.sn, pin=key.user_pin)
    driver.delete_key_pair(key.sn, pin=key.user_pin, key_id=pair.key_id)
    assert driver.list_key_pairs(key.sn, pin=key.user_pin) == []
    with pytest.raises(KeyPairNotFound):
        driver.delete_key_pair(key.sn, pin=key.user_pin, key_id=pair.key_id)
