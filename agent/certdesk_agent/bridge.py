"""The local bridge: `certdesk-agent serve` answers the portal's order page on this computer, so
the page can show "key detected: SN …" without a browser plug-in.

    GET http://127.0.0.1:17800/keys   →  {"keys": [...]}  (what `certdesk-agent keys --json` says)

Small on purpose, and read-only: no PIN, no key work over this door (that stays with the
commands the person runs). It listens on 127.0.0.1 only and answers only the portal's pages:

- `Origin` must be the configured portal's origin (CORS allows exactly that one; anything else,
  or no Origin at all, is 403), so another site open in the browser cannot list the keys;
- `Host` must be 127.0.0.1/localhost with our port, so a DNS-rebinding page (whose Origin would
  be its own anyway) cannot reach us under a name of its choosing either;
- Chrome's Private Network Access preflight is answered for the allowed origin only.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from certdesk_agent import __version__
from certdesk_agent.drivers.base import KeyDriver
from certdesk_agent.errors import AgentError

DEFAULT_PORT = 17800
LOOPBACK = "127.0.0.1"


class BridgeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *, driver: KeyDriver, origin: str, port: int) -> None:
        self.driver = driver
        self.origin = origin
        super().__init__((LOOPBACK, port), BridgeHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class BridgeHandler(BaseHTTPRequestHandler):
    server: BridgeServer
    server_version = f"certdesk-agent/{__version__}"
    protocol_version = "HTTP/1.1"
    allowed_paths: ClassVar[tuple[str, ...]] = ("/keys",)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent on purpose: the console belongs to the person running the agent."""

    # ---- checks --------------------------------------------------------------------------------

    def _refusal(self) -> tuple[HTTPStatus, str, str] | None:
        host = (self.headers.get("Host") or "").lower()
        if host not in (f"{LOOPBACK}:{self.server.port}", f"localhost:{self.server.port}"):
            return HTTPStatus.FORBIDDEN, "host_refused", "只接受本机地址的请求。"
        origin = self.headers.get("Origin")
        if origin != self.server.origin:
            return HTTPStatus.FORBIDDEN, "origin_refused", f"只接受证书服务平台（{self.server.origin}）页面的请求。"
        if self.path.split("?", 1)[0] not in self.allowed_paths:
            return HTTPStatus.NOT_FOUND, "not_found", "没有这个接口。"
        return None

    def _send(
        self, status: HTTPStatus, body: dict[str, Any] | None, *, cors: bool, extra: dict[str, str] | None = None
    ) -> None:
        raw = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Vary", "Origin")
        if cors:
            self.send_header("Access-Control-Allow-Origin", self.server.origin)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if raw:
            self.wfile.write(raw)

    def _error(self, status: HTTPStatus, code: str, message: str, *, cors: bool = False) -> None:
        self._send(status, {"code": code, "message": message}, cors=cors)

    # ---- methods -------------------------------------------------------------------------------

    def do_OPTIONS(self) -> None:  # CORS (and Private Network Access) preflight
        refusal = self._refusal()
        if refusal is not None:
            self._error(*refusal)
            return
        extra = {
            "Access-Control-Allow-Methods": "GET",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "600",
        }
        if self.headers.get("Access-Control-Request-Private-Network") == "true":
            extra["Access-Control-Allow-Private-Network"] = "true"
        self._send(HTTPStatus.NO_CONTENT, None, cors=True, extra=extra)

    def do_GET(self) -> None:
        refusal = self._refusal()
        if refusal is not None:
            self._error(*refusal)
            return
        try:
            self.server.driver.refresh()  # a key plugged in since the last look
            keys = self.server.driver.list_keys()
        except AgentError as exc:
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, exc.code, exc.message, cors=True)
            return
        self._send(HTTPStatus.OK, {"keys": [key.to_dict() for key in keys]}, cors=True)

    def _not_allowed(self) -> None:
        self._send(
            HTTPStatus.METHOD_NOT_ALLOWED,
            {"code": "method_not_allowed", "message": "只接受 GET 请求。"},
            cors=False,
            extra={"Allow": "GET, OPTIONS"},
        )

    do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed


def bridge_server(*, driver: KeyDriver, origin: str, port: int = DEFAULT_PORT) -> BridgeServer:
    """The bridge, bound to 127.0.0.1:`port` (0: any free port), not yet serving."""
    return BridgeServer(driver=driver, origin=origin, port=port)
