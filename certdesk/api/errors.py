"""Which HTTP status a refusal gets. Services raise `DomainError`s with stable codes; the API
sorts them: 400 the request itself is wrong, 401 no valid session (or pairing code), 403 this
session or key may not do that, 409 the order or key is not in a state that allows it, 429 too
many failures, 503 the CA cannot issue now. The body is always {code, message}."""

from __future__ import annotations

from certdesk.core.errors import DomainError, InvalidTransition, PermissionDenied, RateLimited
from certdesk.pki.errors import CaNotInitialised, CsrInvalid, KeyBackendError, KeyRejected, RequestInvalid

UNAUTHORISED = frozenset({"session_invalid", "pairing_invalid"})
FORBIDDEN = frozenset({"wrong_operation", "key_mismatch", "key_not_in_stock", "key_unknown", "unlock_not_online"})
CONFLICT = frozenset(
    {
        "order_changed",
        "already_written",
        "certificate_retired",
        "roles_missing",
        "so_pin_already_released",
        "no_pending_unlock",
        "usb_key_status",
        "sign_certificate_missing",
        "renewal_invalid",
        "validity_exceeds_issuer",
    }
)
BAD_REQUEST = frozenset(
    {
        "csr_malformed",
        "public_key_malformed",
        "csr_required",
        "pop_invalid",
        "role_not_offered",
        "serial_unknown",
        "serial_invalid",
        "pin_invalid",
    }
)


def status_for(error: DomainError) -> int:
    code = error.code
    if isinstance(error, RateLimited):
        return 429
    if code in UNAUTHORISED:
        return 401
    if isinstance(error, PermissionDenied) or code in FORBIDDEN:
        return 403
    if isinstance(error, CaNotInitialised | KeyBackendError):
        return 503
    if code in CONFLICT or isinstance(error, InvalidTransition):
        return 409
    if code in BAD_REQUEST or isinstance(error, CsrInvalid | KeyRejected | RequestInvalid):
        return 400
    # Any other business refusal: the request was understood and is not allowed as things stand.
    return 409
