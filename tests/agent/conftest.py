"""Fixtures for the agent: a fresh SoftHSM token directory per test (see softhsm.py)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from certdesk_agent.cli import main
from certdesk_agent.drivers.pkcs11 import Pkcs11Driver

from tests.agent.certs import ThrowawayCa
from tests.agent.softhsm import (
    SOFTHSM_MODULE,
    EmulatedKey,
    TokenDir,
    library_finalize,
    make_key,
    softhsm_required,
    use_token_dir,
)


@pytest.fixture
def token_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TokenDir]:
    softhsm_required()
    yield use_token_dir(tmp_path / "usbkeys", monkeypatch)
    library_finalize()


@pytest.fixture
def driver(token_dir: TokenDir) -> Pkcs11Driver:
    return Pkcs11Driver(module=SOFTHSM_MODULE, sn_from="label")


@pytest.fixture
def key(token_dir: TokenDir) -> EmulatedKey:
    return make_key()


@pytest.fixture
def new_key(token_dir: TokenDir) -> Callable[..., EmulatedKey]:
    return make_key


@pytest.fixture(scope="session")
def ca() -> ThrowawayCa:
    return ThrowawayCa()


# ---- the agent against a live portal (tests/agent/test_flows*.py) -------------------------------


@dataclass(frozen=True)
class AgentRun:
    code: int
    out: str
    err: str


@pytest.fixture
def agent_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the agent keeps its session tokens between runs: private to the test."""
    path = tmp_path / "agent-state"
    monkeypatch.setenv("CERTDESK_AGENT_STATE_DIR", str(path))
    return path


@pytest.fixture
def run_agent(live_server: Any, token_dir: TokenDir, agent_state: Path) -> Callable[..., AgentRun]:
    """`certdesk-agent COMMAND …` in this process (this test's SoftHSM keys) against the live portal."""

    def run(command: str, *args: str) -> AgentRun:
        out, err = io.StringIO(), io.StringIO()
        code = main(
            ["--module", SOFTHSM_MODULE, "--sn-from", "label", command, "--portal", live_server.url, *args],
            out=out,
            err=err,
        )
        return AgentRun(code=code, out=out.getvalue(), err=err.getvalue())

    return run
