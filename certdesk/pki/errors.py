"""Errors the CA engine raises.

Every refusal is a `DomainError` subclass with a stable `code` (tests, the RA
and the API match on it) and a message an operator can act on. Subclasses group
the refusals; where one class covers several causes, the instance carries a
finer `code` (for example `KeyRejected` with `key_too_small`).
"""

from __future__ import annotations

from collections.abc import Sequence

from certdesk.core.errors import DomainError


class PkiError(DomainError):
    code = "pki_error"


class CaNotInitialised(PkiError):
    code = "ca_not_initialised"


class CaAlreadyExists(PkiError):
    code = "ca_exists"


class KeyBackendError(PkiError):
    code = "key_backend_error"


class KeyExists(KeyBackendError):
    code = "key_exists"


class CsrInvalid(PkiError):
    """The CSR cannot be parsed (`csr_invalid`) or its signature does not verify (`csr_bad_signature`)."""

    code = "csr_invalid"


class KeyRejected(PkiError):
    """The subject public key breaks the key policy.

    Codes: `key_too_small`, `key_too_large`, `key_rsa_exponent`, `key_weak`,
    `key_curve_unsupported`, `key_type_unsupported`, `key_compromised`, `key_is_ca_key`.
    """

    code = "key_rejected"


class RequestInvalid(PkiError):
    """The issuance request itself is wrong.

    Codes: `profile_unknown`, `subject_invalid`, `validity_invalid`, `validity_exceeds_issuer`,
    `renewal_invalid`, `pop_not_verified`, `request_invalid`.
    """

    code = "request_invalid"


class LintFailed(PkiError):
    code = "lint_failed"

    def __init__(self, message: str, *, findings: Sequence[str], code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.findings = tuple(findings)


class CertificateNotFound(PkiError):
    code = "certificate_not_found"


class RevocationRefused(PkiError):
    """Codes: `already_revoked`, `not_issued`, `not_on_hold`, `reason_invalid`, `invalidity_date_invalid`."""

    code = "revocation_refused"
