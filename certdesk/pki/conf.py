"""Settings of the CA engine, read at call time so `override_settings` works.

Every knob has an embedded default good for `make run`; production sets
`PKI_KEY_PASSPHRASE` (or the PKCS#11 ones) through the environment. Secrets
are only ever read from here, never stored in the database.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from django.conf import settings

# The demo default `make run` needs; `pki_init` warns while it is in use.
EMBEDDED_PASSPHRASE = "certdesk-embedded-default-pki-passphrase-change-me"  # noqa: S105


def _get(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def key_backend_name() -> str:
    return str(_get("PKI_KEY_BACKEND", "file"))


def key_algorithm_name() -> str:
    return str(_get("PKI_KEY_ALGORITHM", "ec-p256"))


def key_dir() -> Path:
    return Path(_get("PKI_KEY_DIR", Path(settings.BASE_DIR) / "var" / "pki"))


def key_passphrase() -> bytes:
    value = _get("PKI_KEY_PASSPHRASE", EMBEDDED_PASSPHRASE) or EMBEDDED_PASSPHRASE
    return value.encode() if isinstance(value, str) else bytes(value)


def pkcs11_module() -> str:
    return str(_get("PKI_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so"))


def pkcs11_token_label() -> str:
    return str(_get("PKI_PKCS11_TOKEN_LABEL", "certdesk-ca"))


def pkcs11_pin() -> str:
    return str(_get("PKI_PKCS11_PIN", ""))


def pkcs11_pool_size() -> int:
    return int(_get("PKI_PKCS11_POOL_SIZE", 4))


def base_url() -> str:
    return str(_get("PKI_BASE_URL", "") or _get("SITE_URL", "http://127.0.0.1:8000")).rstrip("/")


def ca_organization() -> str:
    return str(_get("PKI_CA_ORGANIZATION", "certdesk"))


def root_validity_years() -> int:
    return int(_get("PKI_ROOT_VALIDITY_YEARS", 20))


def issuing_validity_years() -> int:
    return int(_get("PKI_ISSUING_VALIDITY_YEARS", 10))


def policy_oid() -> str:
    # 1.3.6.1.4.1.32473 is IANA's enterprise number for documentation (RFC 5612):
    # a placeholder until the CA registers its own CPS OID.
    return str(_get("PKI_POLICY_OID", "1.3.6.1.4.1.32473.1.1"))


def max_validity_years() -> int:
    return int(_get("PKI_MAX_VALIDITY_YEARS", 5))


def crl_validity() -> datetime.timedelta:
    return datetime.timedelta(hours=float(_get("PKI_CRL_VALIDITY_HOURS", 24)))


def root_crl_validity() -> datetime.timedelta:
    return datetime.timedelta(days=float(_get("PKI_ROOT_CRL_VALIDITY_DAYS", 30)))


def crl_lint_max_entries() -> int:
    """Up to this many entries a CRL is linted whole; beyond, a sample of it (see `services._crl_generate`)."""
    return int(_get("PKI_CRL_LINT_MAX_ENTRIES", 2000))


def ocsp_validity() -> datetime.timedelta:
    return datetime.timedelta(hours=float(_get("PKI_OCSP_VALIDITY_HOURS", 24)))


def ocsp_signer_validity() -> datetime.timedelta:
    return datetime.timedelta(days=float(_get("PKI_OCSP_SIGNER_VALIDITY_DAYS", 30)))


def ocsp_signer_renew_before() -> datetime.timedelta:
    return datetime.timedelta(days=float(_get("PKI_OCSP_SIGNER_RENEW_BEFORE_DAYS", 10)))


def state_dir_setting() -> str:
    """The raw settings `state_dir()` depends on, as a cheap cache key."""
    return f"{_get('PKI_STATE_DIR', None)}|{_get('PKI_KEY_DIR', None)}"


def state_dir() -> Path:
    """Where the engine keeps small shared state files (the OCSP cache epoch); default PKI_KEY_DIR."""
    return Path(_get("PKI_STATE_DIR", None) or key_dir())


def ocsp_memory_cache() -> bool:
    return bool(_get("PKI_OCSP_MEMORY_CACHE", True))


def ocsp_memory_cache_entries() -> int:
    return int(_get("PKI_OCSP_MEMORY_CACHE_ENTRIES", 50000))


def ocsp_service_threads() -> int:
    """Threads per OCSP service process (certdesk/pki/asgi.py) that answer, each with its own database connection."""
    return int(_get("PKI_OCSP_SERVICE_THREADS", 4))


def lint_fail_severity() -> str:
    """`ERROR` refuses on FATAL and ERROR findings; `WARNING` on warnings too."""
    return str(_get("PKI_LINT_FAIL_SEVERITY", "ERROR")).upper()


def refresh_interval() -> datetime.timedelta:
    return datetime.timedelta(minutes=float(_get("PKI_REFRESH_INTERVAL_MINUTES", 15)))
