"""The worker dies during issuance: the RA recorded its request, the CA signed and stored the
certificate, and the process is killed before the RA stored the result. A restart (the same
service called again, or the agent retrying its HTTP request) recovers that certificate; nothing
is signed a second time.

Protection: `ra.services.ra_certificate_issue` records its request (OrderCertificate REQUESTED)
before asking the CA, and on a REQUESTED record first looks for a certificate the CA already
issued for the same order, profile and public key (`certificate_issued_for`).
The CA's own pipeline crashing between its steps is tests/pki/test_pki_issue.py
(test_a_crash_mid_pipeline_leaves_a_record_that_says_how_far_it_got).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from certdesk.accounts.models import User
from certdesk.api.openapi import PREFIX
from certdesk.fulfilment.keywork import agent_certificate_request, agent_pairing_create, agent_session_open
from certdesk.orders.models import Order, OrderEvent
from certdesk.pki.models import IssuedCertificate
from certdesk.ra import services as ra_services
from certdesk.ra.models import CertificateRole, OrderCertificate
from certdesk.tokens.models import UsbKey
from tests.api.conftest import SoftwareKey
from tests.faults.conftest import WorkerKilled, kill_once

pytestmark = pytest.mark.django_db


def _signed(order: Order) -> list[IssuedCertificate]:
    return list(IssuedCertificate.objects.filter(reference=order.number, profile="org-sign"))


def _after_the_crash(order: Order) -> IssuedCertificate:
    """The state the kill left: the CA issued one certificate, the RA record still says requested."""
    (issued,) = _signed(order)
    assert issued.status == IssuedCertificate.Status.ISSUED and issued.certificate_der
    record = OrderCertificate.objects.get(order=order, role="sign")
    assert record.status == OrderCertificate.Status.REQUESTED and not record.serial
    assert not OrderEvent.objects.filter(order=order, kind="certificate_issued").exists()
    return issued


def test_killed_after_the_ca_signed_the_restart_recovers_the_certificate(
    file_ca: Any, paid_order: Order, issuer: User, stock_key: UsbKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = agent_session_open(code=agent_pairing_create(order=paid_order, actor=issuer).code, key_sn=stock_key.sn)
    csr = SoftwareKey().csr_pem()
    monkeypatch.setattr(ra_services, "_fill", kill_once(ra_services._fill, "after the CA signed, before the RA stored"))

    with pytest.raises(WorkerKilled):
        agent_certificate_request(session=session.session, role=CertificateRole.SIGN, csr_pem=csr)
    issued = _after_the_crash(paid_order)

    recovered = agent_certificate_request(
        session=session.session, role=CertificateRole.SIGN, csr_pem=csr
    )  # the restart

    assert recovered.serial == issued.serial
    assert recovered.status == OrderCertificate.Status.ISSUED
    assert len(_signed(paid_order)) == 1  # not issued twice
    assert OrderEvent.objects.filter(order=paid_order, kind="certificate_issued").count() == 1
    # And again: a third call (another retry) is still the same certificate.
    assert (
        agent_certificate_request(session=session.session, role=CertificateRole.SIGN, csr_pem=csr).serial
        == issued.serial
    )
    assert len(_signed(paid_order)) == 1


def test_killed_mid_request_the_agent_retry_over_http_gets_the_same_certificate(
    file_ca: Any, paid_order: Order, stock_key: UsbKey, write_code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client()
    opened = client.post(
        f"{PREFIX}/sessions", {"pairing_code": write_code, "key_sn": stock_key.sn}, content_type="application/json"
    )
    headers = {"Authorization": f"Bearer {opened.json()['token']}"}
    body = {"role": "sign", "csr_pem": SoftwareKey().csr_pem()}
    monkeypatch.setattr(ra_services, "_fill", kill_once(ra_services._fill, "server process killed mid-request"))

    with pytest.raises(WorkerKilled):  # the agent sees its connection drop, no answer
        client.post(f"{PREFIX}/certificates", body, content_type="application/json", headers=headers)
    issued = _after_the_crash(paid_order)

    retried = client.post(f"{PREFIX}/certificates", body, content_type="application/json", headers=headers)

    assert retried.status_code == 200, retried.content
    assert retried.json()["serial"] == issued.serial
    assert len(_signed(paid_order)) == 1
    session = client.get(f"{PREFIX}/session", headers=headers).json()
    assert [(c["role"], c["status"], c["serial"]) for c in session["progress"]["certificates"]] == [
        ("sign", "issued", issued.serial)
    ]
