"""certdesk-agent: the USB key agent of the certdesk self-service portal.

Public API: a `KeyDriver` (PKCS#11 now: `Pkcs11Driver`; `default_driver()`),
the value types in `certdesk_agent.types` and the errors in
`certdesk_agent.errors`; the portal client in `certdesk_agent.portal`, the
enroll/renew/unlock work in `certdesk_agent.flows`, the local bridge in
`certdesk_agent.bridge`. No Django, nothing of the server.
"""

from __future__ import annotations

from certdesk_agent.drivers import default_driver
from certdesk_agent.drivers.base import KeyDriver
from certdesk_agent.errors import (
    AdminPinLocked,
    AdminPinRejected,
    AgentError,
    DeleteRefused,
    DriverUnavailable,
    KeyCannotSign,
    KeyLocked,
    KeyNotFound,
    KeyPairNotFound,
    MultipleKeysPresent,
    NoKeyPresent,
    PinPolicyError,
    PortalError,
    PortalUnreachable,
    TokenError,
    WrongPin,
)
from certdesk_agent.types import (
    CertificateInfo,
    CertificateSubject,
    KeyAlgorithm,
    KeyInfo,
    KeyPairInfo,
    KeyRole,
    key_model_name,
)

__version__ = "0.1.0"

__all__ = [
    "AdminPinLocked",
    "AdminPinRejected",
    "AgentError",
    "CertificateInfo",
    "CertificateSubject",
    "DeleteRefused",
    "DriverUnavailable",
    "KeyAlgorithm",
    "KeyCannotSign",
    "KeyDriver",
    "KeyInfo",
    "KeyLocked",
    "KeyNotFound",
    "KeyPairInfo",
    "KeyPairNotFound",
    "KeyRole",
    "MultipleKeysPresent",
    "NoKeyPresent",
    "PinPolicyError",
    "PortalError",
    "PortalUnreachable",
    "TokenError",
    "WrongPin",
    "__version__",
    "default_driver",
    "key_model_name",
]
