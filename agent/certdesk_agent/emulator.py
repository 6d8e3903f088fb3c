"""Emulated USB keys: SoftHSM2 tokens that behave like the CA's keys, for the demo and the tests.

An emulated key is a SoftHSM token whose label is the key's SN (SoftHSM picks
the token serial itself, and C_InitToken has no serial argument), with an SO
PIN, a user PIN, and the firmware retry counter of `certdesk_agent.retries`.

SoftHSM reads SOFTHSM2_CONF (which names the token directory) once, when the
library is initialised in a process. A server process that already uses
SoftHSM for something else (the CA's own keys) must therefore not switch it,
so the server makes emulated keys in a child process:

    SOFTHSM2_CONF=<dir>/softhsm2.conf python -m certdesk_agent.emulator  < request.json

with ``{"keys": [{"sn", "so_pin", "user_pin", "max_retries"}]}`` on stdin (never
on the command line, where every user of the machine could read the PINs) and
``{"created": [{"sn", "serial"}]}`` (plus ``"error"`` on failure, exit 1) on stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pkcs11
from pkcs11 import TokenFlag

from certdesk_agent.drivers import _cryptoki
from certdesk_agent.drivers.pkcs11 import DEFAULT_MODULE
from certdesk_agent.retries import DEFAULT_MAX_RETRIES, RetryState, retry_counter_write

CONF_NAME = "softhsm2.conf"
TOKENS_SUBDIR = "tokens"


@dataclass(frozen=True)
class EmulatedKeySpec:
    sn: str
    so_pin: str
    user_pin: str
    max_retries: int = DEFAULT_MAX_RETRIES

    def __repr__(self) -> str:  # never show the PINs
        return f"EmulatedKeySpec(sn={self.sn!r}, max_retries={self.max_retries})"


def softhsm_conf_write(directory: Path) -> Path:
    """A SoftHSM configuration whose tokens live in `directory/tokens`; returns its path."""
    tokens = directory / TOKENS_SUBDIR
    tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
    conf = directory / CONF_NAME
    conf.write_text(
        f"# emulated USB keys of certdesk (certdesk_agent.emulator)\n"
        f"directories.tokendir = {tokens}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = true\n",
        encoding="utf-8",
    )
    return conf


def emulated_key_create(spec: EmulatedKeySpec, *, module: str = DEFAULT_MODULE) -> str:
    """Make one emulated key in the current SOFTHSM2_CONF's token directory; returns SoftHSM's serial."""
    if not spec.sn or len(spec.sn.encode()) > 32:
        raise ValueError("the SN must be 1 to 32 bytes (it is the token label)")
    if spec.max_retries < 1:
        raise ValueError("max_retries must be at least 1")
    lib = pkcs11.lib(module)
    slots = lib.get_slots(token_present=True)
    if any(slot.get_token().label.strip() == spec.sn for slot in slots):
        raise ValueError(f"a key with SN {spec.sn} already exists in this token directory")
    free = next((slot for slot in slots if not slot.get_token().flags & TokenFlag.TOKEN_INITIALIZED), None)
    if free is None:
        raise RuntimeError("SoftHSM offers no free slot")
    rv = _cryptoki.init_token(module, free.slot_id, so_pin=spec.so_pin, label=spec.sn)
    if rv is None:
        raise RuntimeError(f"{module} does not export C_InitToken")
    if rv != 0:
        raise RuntimeError(f"C_InitToken failed with CK_RV 0x{rv:x}")
    token = lib.get_token(token_label=spec.sn)
    with token.open(rw=True, so_pin=spec.so_pin) as session:
        session.init_pin(spec.user_pin)
        retry_counter_write(session, RetryState(max=spec.max_retries, left=spec.max_retries))
    serial = token.serial
    return serial.decode("ascii") if isinstance(serial, bytes) else str(serial)


def emulated_key_delete(*, serial: str, conf: Path) -> bool:
    """Remove an emulated key (to roll back a half-made batch); True if softhsm2-util did.
    Needs no PIN, so it may use softhsm2-util in a child process with `conf`."""
    util = shutil.which("softhsm2-util")
    if util is None:
        return False
    result = subprocess.run(  # noqa: S603 - fixed program, arguments are ours
        [util, "--delete-token", "--serial", serial],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def main() -> int:
    if not os.environ.get("SOFTHSM2_CONF"):
        print(json.dumps({"error": "SOFTHSM2_CONF is not set", "created": []}))
        return 1
    request = json.load(sys.stdin)
    module = str(request.get("module") or DEFAULT_MODULE)
    created: list[dict[str, str]] = []
    try:
        for item in request["keys"]:
            spec = EmulatedKeySpec(
                sn=str(item["sn"]),
                so_pin=str(item["so_pin"]),
                user_pin=str(item["user_pin"]),
                max_retries=int(item.get("max_retries", DEFAULT_MAX_RETRIES)),
            )
            created.append({"sn": spec.sn, "serial": emulated_key_create(spec, module=module)})
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}", "created": created}))
        return 1
    print(json.dumps({"created": created}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
