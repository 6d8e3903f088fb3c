"""Fixtures for the agent: a fresh SoftHSM token directory per test (see softhsm.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
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
