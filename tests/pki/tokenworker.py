"""What a process of its own runs against a SoftHSM token (spawned by the tests: imports no Django app,
so nothing here needs Django set up)."""

from __future__ import annotations

import os
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec


def token_start_and_sign(
    *, module: str, conf: str, label: str, pin: str, rounds: int, barrier: Any, results: Any
) -> None:
    """`rounds` times: wait for the other processes at `barrier`, start on the token afresh (C_Initialize
    and login, as a newly started worker does) and sign once with its EC key `k`. Puts the list of
    failures on `results`."""
    os.environ["SOFTHSM2_CONF"] = conf
    from certdesk.pki.keys.pkcs11 import Pkcs11KeyBackend, pkcs11_reset

    failures = []
    for _ in range(rounds):
        barrier.wait(timeout=60)
        pkcs11_reset()
        try:
            key = Pkcs11KeyBackend(module=module, token_label=label, pin=pin).load(key_ref="k")
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            key.sign(b"data", ec.ECDSA(hashes.SHA256()))
        except Exception as exc:  # every failure is reported to the test
            failures.append(f"{type(exc).__name__}: {exc}")
    results.put(failures)
