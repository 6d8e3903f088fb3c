"""The portal's agent API (`/api/agent/v1/`, docs/api.md in the certdesk repository), over
urllib: no HTTP library to install next to the USB key's driver.

Every call is one request; a refusal raises `PortalError` with the portal's own code and
Chinese message, no answer raises `PortalUnreachable`. Nothing here retries by itself: every
step of the flows is safe to run again, so the person simply runs the same command again.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import ipaddress
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certdesk_agent import __version__
from certdesk_agent.errors import PortalConfigError, PortalError, PortalUnreachable
from certdesk_agent.types import CertificateSubject, KeyRole, PublicKey

PORTAL_ENV = "CERTDESK_PORTAL"
DEFAULT_PORTAL = "http://127.0.0.1:8000"
API_PREFIX = "/api/agent/v1/"
TIMEOUT_SECONDS = 60.0  # issuing a certificate signs, lints and publishes: allow for a busy CA

# The proof that an encryption pair lives on the same key as the signing pair (docs/api.md):
# an encryption key cannot sign its own request, so the key's signing key vouches for it.
ENC_POP_CONTEXT = b"certdesk-enc-pop/v1"


def spki_der(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def spki_sha256(public_key: PublicKey) -> str:
    """How the portal names a public key in its progress (SHA-256 of the SubjectPublicKeyInfo DER)."""
    return hashlib.sha256(spki_der(public_key)).hexdigest()


def enc_pop_message(*, order_number: str, key_sn: str, public_key: PublicKey) -> bytes:
    return b"\n".join([ENC_POP_CONTEXT, order_number.encode(), key_sn.encode(), spki_sha256(public_key).encode()])


def portal_url(value: str | None = None) -> str:
    """The portal's base URL: `value`, else CERTDESK_PORTAL, else the local development server.
    Plain HTTP only to this computer: the session token and, for an unlock, the key's admin PIN
    travel over this connection."""
    url = (value or os.environ.get(PORTAL_ENV) or DEFAULT_PORTAL).strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PortalConfigError(f"证书服务平台地址“{url}”无效：应形如 https://portal.example.cn。")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise PortalConfigError(f"证书服务平台地址“{url}”必须使用 HTTPS（只有本机地址可以用 HTTP）。")
    if parts.query or parts.fragment:
        raise PortalConfigError(f"证书服务平台地址“{url}”不应包含 ? 或 #。")
    return url


def portal_origin(url: str) -> str:
    """The web origin of the portal's pages (scheme://host[:port]), for the local bridge's check."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{host}{port}"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class CertificateProgress:
    role: KeyRole
    status: str  # "issued" (signed, not yet confirmed on the key) or "installed"
    serial: str
    spki_sha256: str
    not_after: datetime.datetime


@dataclass(frozen=True)
class PortalSession:
    """What `POST sessions` / `GET session` say: the order, the work and how far it got."""

    expires_at: datetime.datetime
    operation: str  # write | download | unlock
    operation_pending: bool
    order_number: str
    business_type: str
    business_type_label: str
    order_status: str
    order_status_label: str
    subject: CertificateSubject
    roles: tuple[KeyRole, ...]
    key_algorithm: str
    renewal_of: str | None
    key_sn: str
    certificates: tuple[CertificateProgress, ...]
    all_installed: bool
    unlock_pending: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PortalSession:
        progress = data["progress"]
        subject = data["subject"]
        return cls(
            expires_at=datetime.datetime.fromisoformat(data["expires_at"]),
            operation=str(data["operation"]),
            operation_pending=bool(data["operation_pending"]),
            order_number=str(data["order"]["number"]),
            business_type=str(data["order"]["business_type"]),
            business_type_label=str(data["order"]["business_type_label"]),
            order_status=str(data["order_status"]),
            order_status_label=str(data["order_status_label"]),
            subject=CertificateSubject(
                organization=str(subject["organisation_name"]),
                uscc=str(subject["uscc"]),
                province=str(subject.get("province") or ""),
                city=str(subject.get("city") or ""),
            ),
            roles=tuple(KeyRole(role) for role in data["roles"]),
            key_algorithm=str(data["key_algorithm"]),
            renewal_of=data.get("renewal_of") or None,
            key_sn=str(data["key_sn"]),
            certificates=tuple(
                CertificateProgress(
                    role=KeyRole(item["role"]),
                    status=str(item["status"]),
                    serial=str(item["serial"]),
                    spki_sha256=str(item["spki_sha256"]),
                    not_after=datetime.datetime.fromisoformat(item["not_after"]),
                )
                for item in progress["certificates"]
            ),
            all_installed=bool(progress["all_installed"]),
            unlock_pending=bool(progress["unlock_pending"]),
        )


@dataclass(frozen=True)
class IssuedCertificate:
    serial: str
    role: KeyRole
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    not_before: datetime.datetime
    not_after: datetime.datetime


@dataclass(frozen=True)
class UnlockPins:
    so_pin: str
    new_so_pin: str

    def __repr__(self) -> str:  # never print the PINs
        return "UnlockPins(…)"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The API never redirects; following one would carry the bearer token somewhere else."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None


@contextmanager
def _answer_format(url: str) -> Iterator[None]:
    try:
        yield
    except (KeyError, TypeError, ValueError) as exc:
        raise PortalUnreachable(url, f"平台的应答缺少或弄错了字段（{exc}）：证书助手是否需要升级？") from None


class PortalClient:
    def __init__(self, base_url: str | None = None, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.base_url = portal_url(base_url)
        self.timeout = timeout
        self._opener = urllib.request.build_opener(
            _NoRedirect(), urllib.request.HTTPSHandler(context=ssl.create_default_context())
        )

    def __repr__(self) -> str:
        return f"PortalClient({self.base_url!r})"

    def _call(self, method: str, route: str, *, token: str | None = None, body: Any = None) -> dict[str, Any]:
        url = self.base_url + API_PREFIX + route
        headers = {"Accept": "application/json", "User-Agent": f"certdesk-agent/{__version__}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - http(s) only
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise self._refusal(exc) from None
        except urllib.error.URLError as exc:
            raise PortalUnreachable(self.base_url, str(exc.reason)) from None
        except (TimeoutError, ConnectionError, http.client.HTTPException, ssl.SSLError) as exc:
            raise PortalUnreachable(self.base_url, type(exc).__name__) from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise PortalUnreachable(self.base_url, "平台的应答不是 JSON（地址是否正确？）") from None
        if not isinstance(answer, dict):
            raise PortalUnreachable(self.base_url, "平台的应答格式不对")
        return answer

    def _refusal(self, exc: urllib.error.HTTPError) -> PortalError | PortalUnreachable:
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            body = None
        finally:
            exc.close()
        if isinstance(body, dict) and body.get("code") and body.get("message"):
            return PortalError(status=exc.code, code=str(body["code"]), message=str(body["message"]))
        if 300 <= exc.code < 400:
            return PortalUnreachable(self.base_url, f"平台要求跳转到 {exc.headers.get('Location', '?')}，请改用该地址")
        return PortalUnreachable(self.base_url, f"HTTP {exc.code}（这不是证书服务平台的接口？）")

    # ---- the routes ----------------------------------------------------------------------------

    def open_session(self, *, pairing_code: str, key_sn: str) -> tuple[str, PortalSession]:
        answer = self._call("POST", "sessions", body={"pairing_code": pairing_code, "key_sn": key_sn})
        with _answer_format(self.base_url):
            return str(answer["token"]), PortalSession.from_json(answer)

    def get_session(self, *, token: str) -> PortalSession:
        answer = self._call("GET", "session", token=token)
        with _answer_format(self.base_url):
            return PortalSession.from_json(answer)

    def request_certificate(
        self,
        *,
        token: str,
        role: KeyRole,
        csr: x509.CertificateSigningRequest | None = None,
        public_key: PublicKey | None = None,
        pop_signature: bytes = b"",
    ) -> IssuedCertificate:
        body: dict[str, Any] = {"role": role.value}
        if csr is not None:
            body["csr_pem"] = csr.public_bytes(serialization.Encoding.PEM).decode()
        else:
            assert public_key is not None
            body["public_key_pem"] = public_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode()
            body["pop_signature"] = base64.b64encode(pop_signature).decode()
        answer = self._call("POST", "certificates", token=token, body=body)
        with _answer_format(self.base_url):
            return self._issued(answer)

    @staticmethod
    def _issued(answer: dict[str, Any]) -> IssuedCertificate:
        return IssuedCertificate(
            serial=str(answer["serial"]),
            role=KeyRole(answer["role"]),
            certificate=x509.load_pem_x509_certificate(answer["certificate_pem"].encode()),
            chain=tuple(x509.load_pem_x509_certificates(answer["chain_pem"].encode())),
            not_before=datetime.datetime.fromisoformat(answer["not_before"]),
            not_after=datetime.datetime.fromisoformat(answer["not_after"]),
        )

    def confirm(self, *, token: str, serials: list[str]) -> tuple[str, str]:
        answer = self._call("POST", "confirm", token=token, body={"serials": serials})
        with _answer_format(self.base_url):
            return str(answer["order_status"]), str(answer["order_status_label"])

    def unlock_start(self, *, token: str) -> UnlockPins:
        answer = self._call("POST", "unlock/start", token=token)
        with _answer_format(self.base_url):
            return UnlockPins(so_pin=str(answer["so_pin"]), new_so_pin=str(answer["new_so_pin"]))

    def unlock_finish(self, *, token: str, ok: bool, error: str = "") -> tuple[str, str]:
        answer = self._call("POST", "unlock/finish", token=token, body={"ok": ok, "error": error[:500]})
        with _answer_format(self.base_url):
            return str(answer["order_status"]), str(answer["order_status_label"])
