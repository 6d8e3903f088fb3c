"""SoftHSM2 token directories for tests: one directory per test, real PKCS#11.

SoftHSM reads SOFTHSM2_CONF (which names its token directory) only in
C_Initialize, and python-pkcs11 loads a module once per process
(`pkcs11.lib()` caches it by path). So a test that wants its own directory
writes a fresh softhsm2.conf under tmp_path, points SOFTHSM2_CONF at it and
re-initialises the library (C_Finalize + C_Initialize: well under a
millisecond); the next call sees exactly this test's tokens. At teardown the
library is finalised again, so no session outlives its directory.

Emulated keys are made in-process (`emulated_key_create` calls C_InitToken on
the free slot; SoftHSM shows the new token at once, unlike tokens that
softhsm2-util makes from another process, which need a re-initialisation).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pkcs11
import pytest
from certdesk_agent.emulator import EmulatedKeySpec, emulated_key_create, softhsm_conf_write

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
USER_PIN = "12345678"
SO_PIN = "so-pin-0000-aaaa"


def softhsm_required() -> None:
    if shutil.which("softhsm2-util") is None or not Path(SOFTHSM_MODULE).exists():
        pytest.skip("SoftHSM2 is not installed (Debian package softhsm2)")


def library_reinitialize() -> None:
    """Make the loaded module read SOFTHSM2_CONF again (or load it for the first time)."""
    lib = pkcs11.lib(SOFTHSM_MODULE)  # initialises it if it was not
    lib.reinitialize()


def library_finalize() -> None:
    lib = pkcs11._loaded.get(SOFTHSM_MODULE)
    if lib is not None and lib.initialized:
        lib.finalize()


@dataclass(frozen=True)
class TokenDir:
    path: Path
    conf: Path


@dataclass(frozen=True)
class EmulatedKey:
    sn: str
    user_pin: str
    so_pin: str
    max_retries: int
    serial: str


def use_token_dir(path: Path, monkeypatch: pytest.MonkeyPatch) -> TokenDir:
    conf = softhsm_conf_write(path)
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    library_reinitialize()
    return TokenDir(path=path, conf=conf)


def make_key(
    sn: str = "551234567890", *, user_pin: str = USER_PIN, so_pin: str = SO_PIN, max_retries: int = 6
) -> EmulatedKey:
    spec = EmulatedKeySpec(sn=sn, so_pin=so_pin, user_pin=user_pin, max_retries=max_retries)
    serial = emulated_key_create(spec, module=SOFTHSM_MODULE)
    return EmulatedKey(sn=sn, user_pin=user_pin, so_pin=so_pin, max_retries=max_retries, serial=serial)
