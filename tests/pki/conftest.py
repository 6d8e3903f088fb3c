"""Fixtures for the CA engine: a fresh CA per test, with its keys in files or in a SoftHSM token.

SoftHSM token isolation: each test that needs a token gets its own
SOFTHSM2_CONF and token directory under tmp_path, initialised with
`softhsm2-util`. python-pkcs11 loads the library once per process
(`pkcs11.lib()` caches it by path) and SoftHSM reads SOFTHSM2_CONF only in
C_Initialize, so the fixture points the environment at the new directory and
calls `pkcs11_reset()`, which closes our sessions and finalises the library;
the next use initialises it again and sees exactly this test's token. On
teardown it resets again, so no session outlives its token directory.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pkitestlib import SOFTHSM_MODULE, SoftHsmToken
from pytest_django.fixtures import Settings as SettingsWrapper

from certdesk.pki.keys.pkcs11 import pkcs11_reset
from certdesk.pki.services import HierarchyInitResult, ca_hierarchy_init, pki_caches_clear


@pytest.fixture
def softhsm_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SoftHsmToken]:
    if shutil.which("softhsm2-util") is None or not Path(SOFTHSM_MODULE).exists():
        pytest.skip("SoftHSM2 is not installed")
    token_dir = tmp_path / "softhsm-tokens"
    token_dir.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {token_dir}\nobjectstore.backend = file\nlog.level = ERROR\n")
    token = SoftHsmToken(conf=conf, label=f"ca-{secrets.token_hex(4)}", pin="246810", so_pin="13579135")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            token.label,
            "--so-pin",
            token.so_pin,
            "--pin",
            token.pin,
        ],
        check=True,
        capture_output=True,
    )
    pkcs11_reset()
    yield token
    pkcs11_reset()


@pytest.fixture(autouse=True)
def pki_isolated(settings: SettingsWrapper, tmp_path: Path) -> Iterator[None]:
    settings.PKI_KEY_DIR = tmp_path / "pki-keys"
    settings.PKI_KEY_PASSPHRASE = "test-passphrase"
    settings.PKI_KEY_BACKEND = "file"
    pki_caches_clear()
    yield
    pki_caches_clear()


@pytest.fixture(params=["file", "pkcs11"])
def ca_backend(request: pytest.FixtureRequest, settings: SettingsWrapper) -> str:
    """Every test that uses a CA runs twice: keys in encrypted files, keys in a SoftHSM token."""
    if request.param == "pkcs11":
        token: SoftHsmToken = request.getfixturevalue("softhsm_token")
        settings.PKI_KEY_BACKEND = "pkcs11"
        settings.PKI_PKCS11_MODULE = SOFTHSM_MODULE
        settings.PKI_PKCS11_TOKEN_LABEL = token.label
        settings.PKI_PKCS11_PIN = token.pin
    return str(request.param)


@pytest.fixture
def ca(db: None, ca_backend: str) -> HierarchyInitResult:
    return ca_hierarchy_init()


@pytest.fixture
def live_ca(transactional_db: None, ca_backend: str) -> HierarchyInitResult:
    return ca_hierarchy_init()
