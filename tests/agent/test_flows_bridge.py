"""`certdesk-agent serve`: the local bridge the order page asks "which key is plugged in?"."""

from __future__ import annotations

import http.client
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest
from certdesk_agent.bridge import BridgeServer, bridge_server
from certdesk_agent.cli import main
from certdesk_agent.drivers.pkcs11 import Pkcs11Driver

from tests.agent.softhsm import EmulatedKey, TokenDir

PORTAL = "https://portal.example.cn"


@pytest.fixture
def bridge(driver: Pkcs11Driver) -> Iterator[BridgeServer]:
    server = bridge_server(driver=driver, origin=PORTAL, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _ask(
    server: BridgeServer, method: str = "GET", path: str = "/keys", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_the_portal_page_sees_the_plugged_in_keys(bridge: BridgeServer, key: EmulatedKey) -> None:
    assert bridge.server_address[0] == "127.0.0.1"
    status, headers, body = _ask(bridge, headers={"Origin": PORTAL})
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == PORTAL
    assert headers["Vary"] == "Origin"
    (listed,) = json.loads(body)["keys"]
    assert (listed["sn"], listed["model"], listed["locked"]) == (key.sn, "EZCA-K55", False)


def test_a_key_plugged_in_later_is_seen(bridge: BridgeServer, new_key: Callable[..., EmulatedKey]) -> None:
    assert json.loads(_ask(bridge, headers={"Origin": PORTAL})[2])["keys"] == []
    plugged = new_key("561111111111")
    assert [k["sn"] for k in json.loads(_ask(bridge, headers={"Origin": PORTAL})[2])["keys"]] == [plugged.sn]


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no Origin: not the portal's page
        {"Origin": "https://evil.example"},
        {"Origin": "http://portal.example.cn"},  # same host, other scheme: another origin
        {"Origin": PORTAL, "Host": "rebound.evil.example:17800"},  # DNS rebinding
    ],
)
def test_other_pages_are_refused(bridge: BridgeServer, key: EmulatedKey, headers: dict[str, str]) -> None:
    status, answered, body = _ask(bridge, headers=headers)
    assert status == 403
    assert "Access-Control-Allow-Origin" not in answered
    assert json.loads(body)["code"] in ("origin_refused", "host_refused")
    assert key.sn.encode() not in body


def test_preflight_and_private_network_access(bridge: BridgeServer) -> None:
    status, headers, _ = _ask(
        bridge,
        "OPTIONS",
        headers={
            "Origin": PORTAL,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Private-Network": "true",
        },
    )
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == PORTAL
    assert headers["Access-Control-Allow-Methods"] == "GET"
    assert headers["Access-Control-Allow-Private-Network"] == "true"
    assert _ask(bridge, "OPTIONS", headers={"Origin": "https://evil.example"})[0] == 403


def test_only_reading_keys(bridge: BridgeServer) -> None:
    assert _ask(bridge, path="/keys/delete", headers={"Origin": PORTAL})[0] == 404
    status, headers, _ = _ask(bridge, "POST", headers={"Origin": PORTAL})
    assert (status, headers["Allow"]) == (405, "GET, OPTIONS")


def test_serve_runs_as_its_own_process(token_dir: TokenDir, key: EmulatedKey) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "certdesk_agent", "serve", "--port", "0", "--portal", PORTAL],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"只接受 {PORTAL} 页面的请求" in line
        port = int(line.split("http://127.0.0.1:", 1)[1].split(" ", 1)[0].rstrip("，,"))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/keys", headers={"Origin": PORTAL})
        response = connection.getresponse()
        assert response.status == 200
        assert [k["sn"] for k in json.loads(response.read())["keys"]] == [key.sn]
        connection.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_refuses_a_plain_http_portal_elsewhere(token_dir: TokenDir) -> None:
    err = io.StringIO()
    assert main(["serve", "--portal", "http://portal.example.cn"], out=io.StringIO(), err=err) == 1
    assert "必须使用 HTTPS" in err.getvalue()
