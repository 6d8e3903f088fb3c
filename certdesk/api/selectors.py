"""Reads for the agent API: what a session is about, and how far it got (so an agent restarted
after a crash or a lost connection knows which steps are already done)."""

from __future__ import annotations

from dataclasses import dataclass

from certdesk.fulfilment.keywork import key_operation_for
from certdesk.fulfilment.models import AgentSession, KeyOperation
from certdesk.orders.models import Order
from certdesk.ra.models import CertificateRole, OrderCertificate
from certdesk.ra.services import ra_issuance_request, ra_roles_for
from certdesk.tokens.selectors import usb_key_get

# The only algorithm the agent generates for organisation certificates today.
KEY_ALGORITHM = "ec-p256"


@dataclass(frozen=True)
class SessionSubject:
    organisation_name: str
    uscc: str
    province: str
    city: str


@dataclass(frozen=True)
class SessionState:
    session: AgentSession
    order: Order
    subject: SessionSubject
    roles: list[CertificateRole]
    renewal_of: str | None
    operation_pending: bool
    certificates: list[OrderCertificate]
    unlock_pending: bool

    @property
    def all_installed(self) -> bool:
        installed = {c.role for c in self.certificates if c.status == OrderCertificate.Status.INSTALLED}
        return bool(self.roles) and installed >= {role.value for role in self.roles}


def agent_session_state(*, session: AgentSession) -> SessionState:
    order = Order.objects.select_related("certificate_type__sub_project__category__industry__region").get(
        pk=session.order_id
    )
    operation = KeyOperation(session.operation)
    # The subject exactly as the RA will ask the CA for it (the CA ignores the CSR's subject).
    request = ra_issuance_request(order=order, role=CertificateRole.SIGN)
    subject = SessionSubject(
        organisation_name=request.organisation_name, uscc=request.uscc, province=request.province, city=request.city
    )
    roles = [] if operation == KeyOperation.UNLOCK else ra_roles_for(order)
    certificates = list(
        OrderCertificate.objects.filter(
            order=order,
            key_sn=session.key_sn,
            status__in=[OrderCertificate.Status.ISSUED, OrderCertificate.Status.INSTALLED],
        ).order_by("role", "created_at")
    )
    key = usb_key_get(sn=session.key_sn)
    return SessionState(
        session=session,
        order=order,
        subject=subject,
        roles=roles,
        renewal_of=(order.previous_serial or None) if operation == KeyOperation.DOWNLOAD else None,
        operation_pending=key_operation_for(order) == operation,
        certificates=certificates,
        unlock_pending=operation == KeyOperation.UNLOCK and key is not None and key.so_pin_released_at is not None,
    )
