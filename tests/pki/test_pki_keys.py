"""Key backends: encrypted PKCS#8 files and PKCS#11 tokens (real SoftHSM2), behind one interface."""

from __future__ import annotations

import copy
import errno
import fcntl
import multiprocessing
import os
import queue
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from pkitestlib import SOFTHSM_MODULE, SoftHsmToken, openssl
from tokenworker import token_start_and_sign

from certdesk.pki.errors import KeyBackendError, KeyExists
from certdesk.pki.keys import KeyAlgorithm, key_backend
from certdesk.pki.keys.file import FileKeyBackend
from certdesk.pki.keys.pkcs11 import Pkcs11KeyBackend, pkcs11_reset


def _verify(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, data: bytes, signature: bytes) -> None:
    public = key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    else:
        public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())


def _sign(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def test_file_backend_writes_encrypted_pkcs8_once(tmp_path: Path) -> None:
    backend = FileKeyBackend(key_dir=tmp_path / "keys", passphrase=b"s3cret-pass")
    key = backend.generate(key_ref="root-ca", algorithm=KeyAlgorithm.EC_P256)
    path = tmp_path / "keys" / "root-ca.p8"
    assert path.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # openssl reads it with the passphrase: a standard PKCS#8 file, not a private format.
    out = openssl("pkey", "-in", path, "-passin", "pass:s3cret-pass", "-pubout").stdout
    assert out.encode() == key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(KeyExists) as exc:
        backend.generate(key_ref="root-ca", algorithm=KeyAlgorithm.EC_P256)
    assert exc.value.code == "key_exists"
    assert backend.exists(key_ref="root-ca")


def test_file_backend_wrong_passphrase_and_missing_key(tmp_path: Path) -> None:
    FileKeyBackend(key_dir=tmp_path, passphrase=b"right").generate(key_ref="k", algorithm=KeyAlgorithm.EC_P384)
    with pytest.raises(KeyBackendError) as exc:
        FileKeyBackend(key_dir=tmp_path, passphrase=b"wrong").load(key_ref="k")
    assert exc.value.code == "key_unreadable"
    with pytest.raises(KeyBackendError) as exc:
        FileKeyBackend(key_dir=tmp_path, passphrase=b"right").load(key_ref="absent")
    assert exc.value.code == "key_missing"
    with pytest.raises(KeyBackendError) as exc:
        FileKeyBackend(key_dir=tmp_path, passphrase=b"right").load(key_ref="../etc/passwd")
    assert exc.value.code == "key_ref_invalid"
    loaded = FileKeyBackend(key_dir=tmp_path, passphrase=b"right").load(key_ref="k")
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    assert loaded.curve.name == "secp384r1"


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(KeyBackendError) as exc:
        key_backend("vault")
    assert exc.value.code == "key_backend_unknown"


def _token_backend(token: SoftHsmToken, **kwargs: object) -> Pkcs11KeyBackend:
    return Pkcs11KeyBackend(module=SOFTHSM_MODULE, token_label=token.label, pin=token.pin, **kwargs)  # type: ignore[arg-type]


@pytest.mark.hsm
@pytest.mark.parametrize("algorithm", [KeyAlgorithm.EC_P256, KeyAlgorithm.EC_P384, KeyAlgorithm.RSA_2048])
def test_pkcs11_key_signs_on_the_token_and_never_leaves_it(
    softhsm_token: SoftHsmToken, algorithm: KeyAlgorithm
) -> None:
    backend = _token_backend(softhsm_token)
    key = backend.generate(key_ref="issuing-ca", algorithm=algorithm)
    assert type(key).__module__ == "certdesk.pki.keys.pkcs11"
    data = b"to be signed"
    _verify(key, data, _sign(key, data))
    if isinstance(key, ec.EllipticCurvePrivateKey):
        assert key.curve.name == algorithm.curve.name
        digest = hashes.Hash(hashes.SHA256())
        digest.update(data)
        signature = key.sign(digest.finalize(), ec.ECDSA(Prehashed(hashes.SHA256())))
        key.public_key().verify(signature, data, ec.ECDSA(hashes.SHA256()))
    else:
        assert key.key_size == 2048
    with pytest.raises(UnsupportedAlgorithm):
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(UnsupportedAlgorithm):
        key.private_numbers()
    assert copy.copy(key) is key and copy.deepcopy(key) is key  # a reference to the token's object
    # The token holds it as sensitive and non-extractable (our pool's login is token-wide, hence no PIN here).
    token = pkcs11.lib(SOFTHSM_MODULE).get_token(token_label=softhsm_token.label)
    with token.open() as session:
        private = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label="issuing-ca")
        assert private[pkcs11.Attribute.SENSITIVE] is True
        assert private[pkcs11.Attribute.EXTRACTABLE] is False
    # Loading again (another process would) finds the same key by label.
    pkcs11_reset()
    again = _token_backend(softhsm_token).load(key_ref="issuing-ca")
    _verify(again, data, _sign(again, data))
    assert again.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[comparison-overlap]


@pytest.mark.hsm
def test_pkcs11_refuses_existing_label_wrong_pin_and_missing_token(softhsm_token: SoftHsmToken) -> None:
    backend = _token_backend(softhsm_token)
    backend.generate(key_ref="root-ca", algorithm=KeyAlgorithm.EC_P256)
    with pytest.raises(KeyExists):
        backend.generate(key_ref="root-ca", algorithm=KeyAlgorithm.EC_P256)
    with pytest.raises(KeyBackendError) as exc:
        backend.load(key_ref="nope")
    assert exc.value.code == "key_missing"

    pkcs11_reset()
    with pytest.raises(KeyBackendError) as exc:
        Pkcs11KeyBackend(module=SOFTHSM_MODULE, token_label=softhsm_token.label, pin="000000").exists(key_ref="x")
    assert exc.value.code == "token_pin"
    with pytest.raises(KeyBackendError) as exc:
        Pkcs11KeyBackend(module=SOFTHSM_MODULE, token_label="no-such-token", pin="1").exists(key_ref="x")
    assert exc.value.code == "token_missing"
    with pytest.raises(KeyBackendError) as exc:
        Pkcs11KeyBackend(module=SOFTHSM_MODULE, token_label=softhsm_token.label, pin="")
    assert exc.value.code == "token_pin_missing"


@pytest.mark.hsm
def test_pkcs11_session_pool_under_threads_and_after_reinitialise(softhsm_token: SoftHsmToken) -> None:
    backend = _token_backend(softhsm_token, pool_size=3)
    key = backend.generate(key_ref="k", algorithm=KeyAlgorithm.EC_P256)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(40):
                data = f"{n}-{i}".encode()
                _verify(key, data, _sign(key, data))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(backend.pool._all) <= 3
    # Someone else in the process re-initialises the library: pooled sessions die; the pool recovers.
    pkcs11.lib(SOFTHSM_MODULE).reinitialize()
    _verify(key, b"after", _sign(key, b"after"))


@pytest.mark.hsm
def test_pkcs11_processes_starting_together_all_get_the_token(softhsm_token: SoftHsmToken) -> None:
    # SoftHSM rewrites token files at C_Initialize and at login; unserialised, four processes starting
    # at once failed in about half the rounds (NoSuchToken, GeneralError, UserPinNotInitialized).
    _token_backend(softhsm_token).generate(key_ref="k", algorithm=KeyAlgorithm.EC_P256)
    pkcs11_reset()
    context = multiprocessing.get_context("spawn")
    processes, rounds = 4, 15
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(
            target=token_start_and_sign,
            kwargs={
                "module": SOFTHSM_MODULE,
                "conf": str(softhsm_token.conf),
                "label": softhsm_token.label,
                "pin": softhsm_token.pin,
                "rounds": rounds,
                "barrier": barrier,
                "results": results,
            },
        )
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        failures = [failure for report in _reports(workers, results, seconds=60) for failure in report]
        for worker in workers:
            worker.join(timeout=30)
    finally:
        for worker in workers:
            if worker.is_alive():  # the others of a worker that died wait at the barrier
                worker.kill()
    assert failures == []
    assert [worker.exitcode for worker in workers] == [0] * processes


def _reports(workers: list[Any], results: Any, *, seconds: float) -> list[Any]:
    """One report from each worker; fails at once, with the exit codes, when a worker dies before reporting."""
    reports: list[Any] = []
    deadline = time.monotonic() + seconds
    while len(reports) < len(workers):
        try:
            reports.append(results.get(timeout=0.5))
        except queue.Empty:
            died = [worker.exitcode for worker in workers if worker.exitcode not in (None, 0)]
            if died:
                pytest.fail(f"a token worker died before reporting (exit codes {died})")
            if time.monotonic() > deadline:
                pytest.fail(f"the token workers did not report within {seconds:g} s")
    return reports


@pytest.mark.hsm
def test_pkcs11_starts_unserialised_where_the_file_system_has_no_locks(
    softhsm_token: SoftHsmToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    _token_backend(softhsm_token).generate(key_ref="k", algorithm=KeyAlgorithm.EC_P256)
    pkcs11_reset()
    tried: list[int] = []

    def no_locks(fd: int, operation: int) -> None:
        tried.append(operation)
        raise OSError(errno.ENOLCK, "no locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    key = _token_backend(softhsm_token).load(key_ref="k")
    _verify(key, b"data", _sign(key, b"data"))
    assert tried  # start-up asked for the lock, and went on without it
