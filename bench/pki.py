"""CA engine benchmark: signing limits, the full issuance pipeline, OCSP over HTTP, and django-ca as the peer.

    .venv/bin/python bench/pki.py [--parts limits,pipeline,ocsp,peer] [--seconds-each 4] [--json FILE]

Sets up Django itself (DJANGO_SETTINGS_MODULE=config.settings_test) with its
own temporary SQLite databases and key directories, and temporary PostgreSQL
databases when one answers on DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/postgres). One CA hierarchy per cell of
{SQLite, PostgreSQL} × {P-256, RSA-2048} × {key files, SoftHSM token}. Each
measurement runs in fresh child processes (Django is configured once per
process) that start their clocks together; the parent prints the tables.
The peer, django-ca, runs the same issuance and OCSP workloads in its own
virtualenv (`bench/peer.py`). Everything it creates is removed at the end
(the django-ca virtualenv is kept in var/ for the next run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import peer
from bench.common import (
    CORES,
    ROOT,
    MemorySampler,
    Report,
    Table,
    Target,
    barrier,
    child_index,
    child_main,
    child_pids,
    cpu_seconds,
    gunicorn,
    http_load,
    memory_note,
    pg_admin_url,
    pg_database,
    progress_clock,
    raw_request,
    run_children,
)

PASSPHRASE = "bench-passphrase"  # noqa: S105 - throwaway keys in a temp dir
HSM_PIN = "1234"
HSM_LABEL = "bench-ca"
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
USCC = "91110000600037341L"
ORG = "北京某某科技有限公司"
ALGORITHMS = {"ec-p256": "P-256", "rsa-2048": "RSA-2048"}
BACKENDS = {"file": "key file", "pkcs11": "SoftHSM"}
OCSP_CLIENTS = (8, 32, 128)


# --------------------------------------------------------------------------- child-side setup


def _django(work: Path, database_url: str) -> None:
    """Configure Django for this process: test settings, our database, this cell's keys (work/cell.json)."""
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings_test"
    os.environ["DATABASE_URL"] = database_url
    cell = json.loads((work / "cell.json").read_text()) if (work / "cell.json").exists() else {}
    import config.settings_test as test_settings

    test_settings.PKI_KEY_DIR = work / "keys"  # type: ignore[attr-defined]
    test_settings.PKI_KEY_PASSPHRASE = PASSPHRASE  # type: ignore[attr-defined]
    test_settings.PKI_BASE_URL = "http://127.0.0.1:8000"  # type: ignore[attr-defined]
    test_settings.PKI_KEY_ALGORITHM = cell.get("algorithm", "ec-p256")  # type: ignore[attr-defined]
    test_settings.PKI_KEY_BACKEND = cell.get("backend", "file")  # type: ignore[attr-defined]
    if os.environ.get("BENCH_PKI_OCSP_MEMORY_CACHE") == "0":  # as on hosts that share no PKI_STATE_DIR
        test_settings.PKI_OCSP_MEMORY_CACHE = False  # type: ignore[attr-defined]
    if cell.get("backend") == "pkcs11":
        os.environ["SOFTHSM2_CONF"] = str(work / "softhsm2.conf")
        test_settings.PKI_PKCS11_MODULE = SOFTHSM_MODULE  # type: ignore[attr-defined]
        test_settings.PKI_PKCS11_TOKEN_LABEL = HSM_LABEL  # type: ignore[attr-defined]
        test_settings.PKI_PKCS11_PIN = HSM_PIN  # type: ignore[attr-defined]
    import django

    django.setup()


def ocsp_service() -> Any:
    """gunicorn entry point (`bench.pki:ocsp_service()`, uvicorn worker): the OCSP service's ASGI app,
    as config/ocsp.py builds it, on the bench database."""
    _django(Path(os.environ["BENCH_PKI_WORK"]), os.environ["DATABASE_URL"])
    from certdesk.pki.asgi import ocsp_application

    return ocsp_application()


def django_app() -> Any:
    """The baseline (`bench.pki:django_app()`, threaded worker): the portal's WSGI app, as config/wsgi.py
    builds it; every OCSP request through Django's URL resolver and middleware stack."""
    _django(Path(os.environ["BENCH_PKI_WORK"]), os.environ["DATABASE_URL"])
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


# The OCSP service's worker (docs/deployment.md); the portal's app servers run gunicorn's threaded worker.
OCSP_SERVICE = ("bench.pki:ocsp_service()", "uvicorn_worker.UvicornWorker")
PORTAL_APP = ("bench.pki:django_app()", None)


def _csrs(n: int) -> list[str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ORG)])
    out = []
    for _ in range(n):
        key = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
        out.append(csr.public_bytes(serialization.Encoding.PEM).decode())
    return out


def _request(csr: str) -> Any:
    from certdesk.pki.types import IssuanceRequest

    return IssuanceRequest(
        profile="org-sign", organisation_name=ORG, uscc=USCC, province="北京市", city="北京市", csr_pem=csr
    )


def child_migrate(work: Path, database_url: str) -> dict[str, Any]:
    """Migrate an empty database (the template every cell's database is copied from)."""
    _django(work, database_url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return {}


def child_setup(work: Path, database_url: str, certificates: int) -> dict[str, Any]:
    """Create the CA hierarchy of this cell, issue some certificates (their OCSP responses are pre-signed)."""
    _django(work, database_url)
    from certdesk.pki.services import ca_hierarchy_init, certificate_issue

    ca_hierarchy_init()
    serials = [certificate_issue(request=_request(csr)).serial for csr in _csrs(certificates)]
    return {"serials": serials}


def _lint_and_sign(certificates: int) -> tuple[Any, Any]:
    """(sign the same TBS again, lint + sign one new certificate): with the cell's issuing CA key, no database
    writes — what every issuance must do before any database work. `certificates`: how many keys to prepare,
    one per certificate lint + sign makes (past that many, keys repeat)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from certdesk.pki import lint
    from certdesk.pki.keys import signature_hash
    from certdesk.pki.profiles import ORG_SIGN, certificate_builder, organisation_subject
    from certdesk.pki.selectors import ca_get
    from certdesk.pki.serials import serial_new
    from certdesk.pki.signers import signer_for

    signer = signer_for(ca_get(role="issuing"))
    # A different subscriber key per certificate, as in the pipeline (its key identifier differs too, and
    # lint remembers what repeats).
    public_keys = [ec.generate_private_key(ec.SECP256R1()).public_key() for _ in range(certificates)]
    subject = organisation_subject(organisation_name=ORG, uscc=USCC, province="北京市", city="北京市").to_name()
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    lint_key = lint.lint_signing_key(signer.key)
    hash_algorithm = signature_hash(signer.key)
    made = 0

    def builder() -> x509.CertificateBuilder:
        nonlocal made
        made += 1
        return certificate_builder(
            profile=ORG_SIGN,
            subject=subject,
            public_key=public_keys[made % len(public_keys)],
            serial=serial_new(),
            not_before=now,
            not_after=now + datetime.timedelta(days=365),
            issuer=signer.certificate,
        )

    template = builder()

    def sign_only() -> None:
        template.sign(signer.key, hash_algorithm)

    def lint_and_sign() -> None:
        b = builder()
        pre = b.sign(lint_key, hash_algorithm)
        if lint.blocking(lint.lint_certificate(pre.public_bytes(serialization.Encoding.DER))):
            raise SystemExit("lint refused the benchmark certificate")
        b.sign(signer.key, hash_algorithm)

    sign_only()  # warm (token session pool, key load)
    return sign_only, lint_and_sign


# Keys prepared per second of lint + sign: one process makes up to ~450 certificates a second on a fast core.
LINT_AND_SIGN_PER_SECOND = 600


def child_limits(work: Path, database_url: str, seconds: float, what: str) -> dict[str, Any]:
    """Sign-only and lint+sign loops with the cell's issuing CA key: the ceilings, no database writes."""
    _django(work, database_url)
    sign_only, lint_and_sign = _lint_and_sign(int(seconds * LINT_AND_SIGN_PER_SECOND) + 50)
    done = 0
    barrier()
    c0 = time.process_time()
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while time.perf_counter() < deadline:
        if what == "sign":
            for _ in range(20):
                sign_only()
            done += 20
        else:
            lint_and_sign()
            done += 1
    return {"count": done, "seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def child_pipeline(work: Path, database_url: str, seconds: float) -> dict[str, Any]:
    """certificate_issue() in a loop: parse+verify CSR, policy, record, lint, sign, store, pre-sign OCSP."""
    _django(work, database_url)
    from certdesk.pki.services import certificate_issue

    requests = [_request(c) for c in _csrs(int(seconds * 450) + 50)]
    certificate_issue(request=requests.pop())  # warm caches (keys, lint validators)
    backend = _backend_pid()
    done = 0
    barrier()
    c0 = time.process_time()
    t0 = time.perf_counter()
    deadline = t0 + seconds
    server0 = cpu_seconds([backend]) if backend else 0.0
    while time.perf_counter() < deadline and requests:
        certificate_issue(request=requests.pop())
        done += 1
    return {
        "count": done,
        "seconds": time.perf_counter() - t0,
        "cpu": time.process_time() - c0,
        "server_cpu": cpu_seconds([backend]) - server0 if backend else None,
    }


def _backend_pid() -> int | None:
    """This process's PostgreSQL backend, when the server runs on this host (None: SQLite, or elsewhere)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = int(cursor.fetchone()[0])
    return pid if Path(f"/proc/{pid}").exists() else None


# The interleaved ratio's slots: lint + sign on one process per core, the pipeline on one and on two per core.
# Half-second slots: at the default length each mode gets five slots a round. An operation counts for the slot it
# started in; the part of it that runs into the next slot (~1 % of a slot) is about the same for every mode.
SLOT_SECONDS = 0.5
SLOT_MODES = (("lint+sign", CORES), ("pipeline", CORES), ("pipeline", 2 * CORES))


def child_interleaved(work: Path, database_url: str, seconds: float) -> dict[str, Any]:
    """Lint + sign and the pipeline in turns of short slots (SLOT_SECONDS), all processes in step (SLOT_MODES): both
    see the same spells of a shared VM's speed, so their ratio holds when the machine's speed does not.
    Process i works in a slot when i < that mode's process count, and sleeps through it otherwise; an
    operation counts for the slot it started in. Returns the count per mode, the seconds of each, and the
    CPU seconds spent in lint per mode."""
    _django(work, database_url)
    from certdesk.pki import lint
    from certdesk.pki.services import certificate_issue

    # The CPU each mode spends in lint itself (the pipeline and lint + sign both call it through the module).
    lint_seconds = [0.0] * len(SLOT_MODES)
    lint_certificate = lint.lint_certificate
    mode = 0

    def lint_timed(der: bytes) -> Any:
        started = time.thread_time()
        try:
            return lint_certificate(der)
        finally:
            lint_seconds[mode] += time.thread_time() - started

    lint.lint_certificate = lint_timed  # type: ignore[assignment]
    # Lint + sign has a third of the slots.
    _sign_only, lint_and_sign = _lint_and_sign(int(seconds / len(SLOT_MODES) * LINT_AND_SIGN_PER_SECOND) + 50)
    requests = [_request(c) for c in _csrs(int(seconds * 300) + 50)]
    certificate_issue(request=requests.pop())  # warm caches (keys, lint validators)
    lint_and_sign()
    lint_seconds[:] = [0.0] * len(SLOT_MODES)  # not the warm-up's
    index = child_index()
    rounds = max(1, round(seconds / (SLOT_SECONDS * len(SLOT_MODES))))
    counts = [0] * len(SLOT_MODES)
    start = barrier()
    time.sleep(max(0.0, start - time.time()))
    for slot in range(rounds * len(SLOT_MODES)):
        mode = slot % len(SLOT_MODES)
        what, processes = SLOT_MODES[mode]
        slot_end = start + (slot + 1) * SLOT_SECONDS
        if index >= processes:
            time.sleep(max(0.0, slot_end - time.time()))
            continue
        while time.time() < slot_end:
            if what == "pipeline":
                certificate_issue(request=requests.pop())
            else:
                lint_and_sign()
            counts[mode] += 1
    return {"counts": counts, "seconds_each": rounds * SLOT_SECONDS, "lint_cpu": lint_seconds}


def _ocsp_request_ders(serials: list[str], hash_name: str) -> list[bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp

    from certdesk.pki.models import IssuedCertificate
    from certdesk.pki.selectors import ca_certificate_der

    algorithm = hashes.SHA256() if hash_name == "sha256" else hashes.SHA1()  # noqa: S303 - CertID hash
    issuer = x509.load_der_x509_certificate(ca_certificate_der(role="issuing"))
    out = []
    for record in IssuedCertificate.objects.filter(serial__in=serials):
        certificate = x509.load_der_x509_certificate(bytes(record.certificate_der or b""))
        request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, algorithm).build()
        out.append(request.public_bytes(serialization.Encoding.DER))
    return out


def child_ocsp_requests(work: Path, database_url: str, serials: list[str]) -> dict[str, Any]:
    """DER OCSP requests (SHA-1 CertIDs, no nonce: what OpenSSL and browsers send) for the serials, hex."""
    _django(work, database_url)
    return {"requests": [der.hex() for der in _ocsp_request_ders(serials, "sha1")]}


def child_ocsp_inproc(work: Path, database_url: str, serials: list[str], seconds: float) -> dict[str, Any]:
    """The OCSP view through Django's test client, SHA-256 CertIDs, no nonce: django-ca's workload, on certdesk."""
    _django(work, database_url)
    from cryptography.x509 import ocsp
    from django.test import Client

    requests = _ocsp_request_ders(serials, "sha256")
    client = Client()

    def one(i: int) -> None:
        reply = client.post("/pki/ocsp/", data=requests[i % len(requests)], content_type="application/ocsp-request")
        response = ocsp.load_der_ocsp_response(reply.content)
        if (
            response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL
            or response.certificate_status != ocsp.OCSPCertStatus.GOOD
        ):
            raise SystemExit("certdesk OCSP: not a good, successful response")

    for i in range(len(requests)):
        one(i)
    done = 0
    c0 = time.process_time()
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while time.perf_counter() < deadline:
        for _ in range(20):
            one(done)
            done += 1
    return {"count": done, "seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0}


CHILDREN = {
    "migrate": lambda a: child_migrate(Path(a.work), a.db),
    "setup": lambda a: child_setup(Path(a.work), a.db, a.count),
    "limits": lambda a: child_limits(Path(a.work), a.db, a.seconds, a.what),
    "pipeline": lambda a: child_pipeline(Path(a.work), a.db, a.seconds),
    "interleaved": lambda a: child_interleaved(Path(a.work), a.db, a.seconds),
    "ocsp-requests": lambda a: child_ocsp_requests(Path(a.work), a.db, a.serials.split(",")),
    "ocsp-inproc": lambda a: child_ocsp_inproc(Path(a.work), a.db, a.serials.split(","), a.seconds),
}


# --------------------------------------------------------------------------- parent side


@dataclass
class Cell:
    """One CA hierarchy: a database, an algorithm, a key backend."""

    db_label: str
    algorithm: str
    backend: str
    work: Path
    url: str
    serials: list[str]

    @property
    def label(self) -> str:
        return f"{self.db_label}, {ALGORITHMS[self.algorithm]}, {BACKENDS[self.backend]}"


def _child(kind: str, cell: Cell, **kw: Any) -> dict[str, Any]:
    return run_children(__file__, kind, work=cell.work, db=cell.url, **kw)[0]


class Rate(NamedTuple):
    per_second: float
    cpu_ms: float  # per operation, in the measuring processes
    rss_mb: float  # peak, of one process
    server_cpu_ms: float | None  # per operation, in their PostgreSQL backends (None: SQLite, or not measured)


def _rate(kind: str, cell: Cell, *, n: int, seconds: float, **kw: Any) -> Rate:
    """Operations per second and what each cost, over n processes at once."""
    results = run_children(__file__, kind, n=n, work=cell.work, db=cell.url, seconds=seconds, **kw)
    done = sum(r["count"] for r in results)
    servers = [r["server_cpu"] for r in results if r.get("server_cpu") is not None]
    return Rate(
        per_second=done / max(r["seconds"] for r in results),
        cpu_ms=sum(r["cpu"] for r in results) / max(done, 1) * 1000,
        rss_mb=max(r["peak_rss_mb"] for r in results),
        server_cpu_ms=sum(servers) / max(done, 1) * 1000 if len(servers) == len(results) else None,
    )


def _plural(n: int) -> str:
    return f"{n} process{'es' if n > 1 else ''}"


def _make_cells(
    work: Path, pg_admin: str | None, pg_prefix: str, hsm: bool, progress: Any, *, ocsp_certificates: int
) -> list[Cell]:
    """Migrate one template per database kind, copy it per cell, create each cell's CA hierarchy."""
    databases: dict[str, tuple[Path, str]] = {}
    template = work / "template"
    template.mkdir()
    sqlite_template = template / "bench.sqlite3"
    run_children(__file__, "migrate", work=template, db=f"sqlite:///{sqlite_template}")
    databases["SQLite"] = (sqlite_template, "")
    if pg_admin:
        url = pg_database(pg_admin, f"{pg_prefix}_template")
        run_children(__file__, "migrate", work=template, db=url)
        databases["PostgreSQL"] = (template, f"{pg_prefix}_template")
    progress("databases migrated")
    cells = []
    for db_label in databases:
        for algorithm in ALGORITHMS:
            for backend in ["file", *(["pkcs11"] if hsm else [])]:
                name = f"{db_label[:2].lower()}-{algorithm}-{backend}"
                cell_dir = work / name
                cell_dir.mkdir()
                (cell_dir / "cell.json").write_text(json.dumps({"algorithm": algorithm, "backend": backend}))
                if backend == "pkcs11":
                    _softhsm_token(cell_dir)
                if db_label == "SQLite":
                    for part in template.glob("bench.sqlite3*"):  # with -wal / -shm, if any
                        shutil.copy(part, cell_dir / part.name)
                    url = f"sqlite:///{cell_dir / 'bench.sqlite3'}"
                else:
                    url = _pg_copy(pg_admin or "", f"{pg_prefix}_template", f"{pg_prefix}_{name.replace('-', '_')}")
                cells.append(Cell(db_label, algorithm, backend, cell_dir, url, []))
    # OCSP runs on the default configuration (P-256, key files): it needs certificates to ask about.
    for cell in cells:
        count = ocsp_certificates if (cell.algorithm, cell.backend) == ("ec-p256", "file") else 0
        cell.serials = _child("setup", cell, count=count)["serials"]
        progress(f"{cell.label}: CA hierarchy created, {count} certificates issued")
    return cells


def _softhsm_token(cell_dir: Path) -> None:
    tokens = cell_dir / "tokens"
    tokens.mkdir()
    conf = cell_dir / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", HSM_LABEL, "--so-pin", "12345678", "--pin", HSM_PIN],
        check=True,
        capture_output=True,
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
    )


def _pg_copy(admin_url: str, template: str, name: str) -> str:
    import psycopg

    with psycopg.connect(admin_url.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


def _pg_drop_prefix(admin_url: str, prefix: str) -> None:
    import psycopg

    with psycopg.connect(admin_url.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [prefix + "%"])]
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _cell(cells: list[Cell], db_label: str, algorithm: str = "ec-p256", backend: str = "file") -> Cell | None:
    for cell in cells:
        if (cell.db_label, cell.algorithm, cell.backend) == (db_label, algorithm, backend):
            return cell
    return None


def _ocsp_http(
    cell: Cell,
    *,
    workers: int,
    threads: int,
    clients: list[int],
    seconds: float,
    memory_cache: bool = True,
    app: tuple[str, str | None] = OCSP_SERVICE,
) -> list[dict[str, Any]]:
    """gunicorn on the cell's database; closed-loop keep-alive clients POSTing OCSP requests round-robin."""
    ders = [bytes.fromhex(h) for h in _child("ocsp-requests", cell, serials=",".join(cell.serials))["requests"]]
    env = {"BENCH_PKI_WORK": str(cell.work), "DATABASE_URL": cell.url}
    if not memory_cache:
        env["BENCH_PKI_OCSP_MEMORY_CACHE"] = "0"
    if cell.backend == "pkcs11":
        env["SOFTHSM2_CONF"] = str(cell.work / "softhsm2.conf")
    results = []
    with gunicorn(
        app[0],
        worker_class=app[1],
        env=env,
        workers=workers,
        threads=threads,
        config=ROOT / "deploy" / "gunicorn.conf.py",
        extra=["--max-requests", "0"],  # no worker restarts in the middle of a measurement
    ) as (port, server):
        _check_one(port, ders[0])
        memory = MemorySampler()
        memory.watch("app server", server.pid)
        with memory:
            for n in clients:
                payloads = [
                    (
                        "ocsp",
                        raw_request(
                            "POST", "/pki/ocsp/", body=der, headers={"Content-Type": "application/ocsp-request"}
                        ),
                    )
                    for der in ders
                ]
                scripts = [payloads[i::n] or payloads for i in range(n)]
                result = http_load(
                    port,
                    scripts,
                    seconds=seconds,
                    warmup=1.0,
                    cpu_of=[server.pid, *child_pids(server.pid)],
                    # A successful, signed response (status 0, responseBytes present), not an error stub.
                    ok=lambda head, body: head.startswith(b"HTTP/1.1 200") and len(body) > 100,
                )
                results.append({"clients": n, **result.to_dict()})
        for r in results:
            r["memory"] = memory.report()
    return results


def _check_one(port: int, request: bytes) -> None:
    """One request answered correctly (signed, "good") before the load starts."""
    import urllib.request

    from cryptography.x509 import ocsp

    http = urllib.request.Request(
        f"http://127.0.0.1:{port}/pki/ocsp/", data=request, headers={"Content-Type": "application/ocsp-request"}
    )
    with urllib.request.urlopen(http, timeout=10) as reply:  # noqa: S310 - our own server on loopback
        response = ocsp.load_der_ocsp_response(reply.read())
    if (
        response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL
        or response.certificate_status != ocsp.OCSPCertStatus.GOOD
    ):
        raise SystemExit(f"OCSP server answered {response.response_status}, expected a good status")


def _limits(cells: list[Cell], seconds: float, progress: Any) -> tuple[Table, dict[tuple[str, str, int], float]]:
    """Sign-only (1 process) and lint+sign (1 and all cores) per algorithm and key backend, on SQLite cells."""
    table = Table(
        "Limits: signing and linting without the database (SQLite cells; no rows written)",
        ["measurement", "key", "processes", "certificates/s", "CPU per certificate", "peak RSS per process"],
    )
    limits: dict[tuple[str, str, int], float] = {}
    for cell in cells:
        if cell.db_label != "SQLite":
            continue
        key = f"{ALGORITHMS[cell.algorithm]}, {BACKENDS[cell.backend]}"
        rate, cpu, rss, _server = _rate("limits", cell, n=1, seconds=seconds, what="sign")
        table.add("sign only (same TBS)", key, 1, f"{rate:,.0f}", f"{cpu:.3f} ms", f"{rss:.0f} MB")
        for n in sorted({1, CORES}) if (cell.algorithm, cell.backend) == ("ec-p256", "file") else [CORES]:
            rate, cpu, rss, _server = _rate("limits", cell, n=n, seconds=seconds, what="lint+sign")
            limits[(cell.algorithm, cell.backend, n)] = rate
            table.add("lint + sign (pipeline ceiling)", key, n, f"{rate:,.0f}", f"{cpu:.2f} ms", f"{rss:.0f} MB")
        progress(f"limits measured: {key}")
    table.notes = [
        "sign only: the same to-be-signed certificate signed again and again: the key's raw speed.",
        "lint + sign: build, sign a pre-certificate with a throwaway key, pkilint it, sign with the CA key —"
        " what every issuance must do before any database work.",
    ]
    return table, limits


RATIO_ROUNDS = 3
PEER_ROUNDS = 3


def _ratio_rounds(cells: list[Cell], seconds: float, progress: Any) -> tuple[Table, dict[str, float]]:
    """The pipeline's share of its limit, with the two measured in turns of half-second slots.

    On a shared VM the speed drifts by 10–50 % within seconds (a plain CPU loop here varies 2× between
    runs a second apart), so a limit measured at the start and a pipeline measured minutes, or even
    seconds, later give a ratio off by as much. `child_interleaved` alternates lint + sign and the pipeline
    (on one and on two processes per core) slot by slot in the same processes, so each sees the same
    spells; a round is one such run per database, the ratio takes the better pipeline, and the target the
    median of the rounds. P-256 with the key file, as the target says.
    """
    table = Table(
        f"Pipeline vs lint + sign, in alternating {SLOT_SECONDS:g}-second slots ({RATIO_ROUNDS} rounds; P-256, key file)",
        [
            "round",
            "database",
            "lint + sign",
            f"pipeline, {_plural(CORES)}",
            f"pipeline, {_plural(2 * CORES)}",
            "pipeline / lint + sign",
            "lint CPU a certificate: in lint + sign · in the pipeline",
        ],
    )
    pipeline_cells = [c for c in cells if (c.algorithm, c.backend) == ("ec-p256", "file")]
    ratios: dict[str, list[float]] = {c.db_label: [] for c in pipeline_cells}
    for round_number in range(1, RATIO_ROUNDS + 1):
        for cell in pipeline_cells:
            results = run_children(
                __file__,
                "interleaved",
                n=max(n for _, n in SLOT_MODES),
                work=cell.work,
                db=cell.url,
                seconds=seconds * len(SLOT_MODES),
            )
            # In SLOT_MODES' order: lint + sign, the pipeline on one and on two processes per core.
            limit, on_cores, on_twice = (
                sum(r["counts"][mode] for r in results) / results[0]["seconds_each"] for mode in range(len(SLOT_MODES))
            )
            if not limit:
                raise SystemExit(f"{cell.db_label}: lint + sign made no certificate in its slots; no ratio to take")
            pipeline = max(on_cores, on_twice)
            ratios[cell.db_label].append(pipeline / limit)
            lint_ms = [
                sum(r["lint_cpu"][mode] for r in results) / max(1, sum(r["counts"][mode] for r in results)) * 1000
                for mode in range(len(SLOT_MODES))
            ]
            table.add(
                round_number,
                cell.db_label,
                f"{limit:,.0f}/s",
                f"{on_cores:,.0f}/s",
                f"{on_twice:,.0f}/s",
                f"{pipeline / limit * 100:.1f}%",
                f"{lint_ms[0]:.2f} · {lint_ms[1]:.2f} ms ({lint_ms[1] / lint_ms[0] * 100 - 100:+.0f} %)",
            )
        progress(f"ratio round {round_number} measured")
    shares = {db: statistics.median(values) for db, values in ratios.items() if values}
    table.notes = [
        "Each run turns, slot by slot, between lint + sign on "
        + _plural(CORES)
        + f" and the pipeline on {_plural(CORES)} and on {_plural(2 * CORES)} (the same processes; those not"
        " in a slot sleep), so all three see the same spells of the machine's speed; the ratio takes the better"
        " pipeline. Median ratio: " + "; ".join(f"{db} {share * 100:.1f} %" for db, share in shares.items()) + ".",
        f"Lint CPU: the same lint, timed around each call, in the lint + sign slots and in the pipeline's slots on"
        f" {_plural(CORES)}. On PostgreSQL the pipeline's process blocks once a certificate for the database's"
        " answer (the store's; the record's travels while lint runs), and on a shared VM the work after each"
        " block runs slower (caches, the vCPU's halt): a lint + sign loop with two 0.6 ms sleeps a certificate"
        " pays the same (docs/pki.md). The pipeline pays it on everything it does, not only on lint.",
    ]
    return table, shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child")
    parser.add_argument("--work")
    parser.add_argument("--db")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=0)
    parser.add_argument("--what", default="")
    parser.add_argument("--serials", default="")
    parser.add_argument("--seconds-each", type=float, default=2.5, help="length of each timed run")
    parser.add_argument("--parts", default="limits,pipeline,ocsp,peer", help="comma-separated subset to run")
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers (default: one per core)")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker (0: sync workers)")
    parser.add_argument("--no-hsm", action="store_true", help="skip the SoftHSM cells")
    parser.add_argument("--json", help="also write the tables and targets here (for bench/run.py)")
    args = parser.parse_args()
    if args.child:
        child_main(CHILDREN, args)
        return

    began = time.time()
    progress = progress_clock()
    parts = set(args.parts.split(","))
    seconds = args.seconds_each
    work = Path(tempfile.mkdtemp(prefix="certdesk-bench-pki-"))
    report = Report("CA engine benchmark (bench/pki.py)", "make bench  # or: .venv/bin/python bench/pki.py")
    pg_admin = pg_admin_url()
    pg_prefix = f"certdesk_bench_pki_{os.getpid()}"
    hsm = bool(shutil.which("softhsm2-util")) and Path(SOFTHSM_MODULE).exists() and not args.no_hsm
    if not pg_admin:
        progress("no PostgreSQL reachable: SQLite only")
    pipeline_rates: dict[tuple[str, str, str], float] = {}
    try:
        cells = _make_cells(work, pg_admin, pg_prefix, hsm, progress, ocsp_certificates=300)

        limits: dict[tuple[str, str, int], float] = {}
        if parts & {"limits", "pipeline"}:
            table, limits = _limits(cells, seconds, progress)
            report.tables.append(table)

        if "pipeline" in parts:
            table = Table(
                "Issuance pipeline: certificate_issue() — CSR check, key policy, record, lint, sign, store,"
                " pre-sign OCSP",
                [
                    "database",
                    "CA key",
                    "processes",
                    "certificates/s",
                    "vs lint + sign",
                    "CPU per certificate",
                    "database server CPU per certificate",
                    "peak RSS",
                ],
            )
            for cell in cells:
                # One process per core, and two: a process waiting for a commit leaves its core to the other
                # (in production the same overlap comes from gunicorn's threads and workers).
                runs = [1, CORES, 2 * CORES] if (cell.algorithm, cell.backend) == ("ec-p256", "file") else [CORES]
                for n in sorted(set(runs)):
                    rate, cpu, rss, server_cpu = _rate("pipeline", cell, n=n, seconds=seconds)
                    ceiling = limits.get((cell.algorithm, cell.backend, min(n, CORES)))
                    if n >= CORES:
                        key = (cell.db_label, cell.algorithm, cell.backend)
                        pipeline_rates[key] = max(rate, pipeline_rates.get(key, 0.0))
                    table.add(
                        cell.db_label,
                        f"{ALGORITHMS[cell.algorithm]}, {BACKENDS[cell.backend]}",
                        n,
                        f"{rate:,.0f}",
                        f"{rate / ceiling * 100:.0f}%" if ceiling else "—",
                        f"{cpu:.2f} ms",
                        f"{server_cpu:.2f} ms" if server_cpu is not None else "in process",
                        f"{rss:.0f} MB",
                    )
                progress(f"pipeline measured: {cell.label}")
            table.notes = [
                "Each process commits the record and the store on their own (record → lint → sign → store), as in production;"
                " the targets take the better of one and two processes per core."
                " Peak RSS is per issuing process (in production: a gunicorn worker serving the station or agent API)."
                " The database server's CPU is its backends' for these processes (/proc; SQLite works inside the process):"
                " it runs on the same cores, so its CPU is CPU the pipeline's processes do not get."
            ]
            report.tables.append(table)
            best = max(pipeline_rates.values(), default=0.0)
            report.targets.append(
                Target(
                    "issuance pipeline",
                    "≥ 200 certificates/s",
                    "; ".join(
                        f"{db} {ALGORITHMS[a]} {BACKENDS[b]}: {r:,.0f}/s"
                        for (db, a, b), r in pipeline_rates.items()
                        if (a, b) == ("ec-p256", "file")
                    )
                    + f" (best cell {best:,.0f}/s)",
                    best >= 200,
                )
            )
            table, shares = _ratio_rounds(cells, seconds, progress)
            report.tables.append(table)
            report.targets.append(
                Target(
                    "issuance pipeline vs its limit",
                    "≥ 50 % of lint + sign",
                    "; ".join(
                        f"{db} P-256 key file: {share * 100:.1f} % (median of {RATIO_ROUNDS} rounds of alternating slots)"
                        for db, share in shares.items()
                    )
                    or "—",
                    min(shares.values()) >= 0.5 if shares else None,
                )
            )

        ocsp_results: list[dict[str, Any]] = []
        if "ocsp" in parts:
            workers = args.workers or CORES
            table = Table(
                f"OCSP over HTTP: the OCSP service (config/ocsp.py), gunicorn {workers} workers, uvicorn worker"
                " (deploy/gunicorn.conf.py), closed-loop keep-alive clients on loopback, SHA-1 CertIDs, no nonce",
                [
                    "database",
                    "clients",
                    "responses/s",
                    "p50",
                    "p99",
                    "failed",
                    "server CPU/response",
                    "load generator CPU/response",
                    "app server RSS",
                ],
            )
            main_db = "PostgreSQL" if pg_admin else "SQLite"
            plan = [
                (main_db, list(OCSP_CLIENTS), True, OCSP_SERVICE),
                (f"{main_db}, no memory cache", [32], False, OCSP_SERVICE),
                (f"{main_db}, baseline: the portal's app server", [32], True, PORTAL_APP),
            ]
            if pg_admin:
                plan.append(("SQLite", [32], True, OCSP_SERVICE))
            for db_label, clients, memory_cache, app in plan:
                ocsp_cell = _cell(cells, db_label.split(",")[0])
                assert ocsp_cell is not None
                for r in _ocsp_http(
                    ocsp_cell,
                    workers=workers,
                    threads=args.threads,
                    clients=clients,
                    seconds=6.0,
                    memory_cache=memory_cache,
                    app=app,
                ):
                    ocsp_results.append({"db": db_label, **r})
                    table.add(
                        db_label,
                        r["clients"],
                        f"{r['rate']:,.0f}",
                        f"{r['p50']:.1f} ms",
                        f"{r['p99']:.1f} ms",
                        r["failures"],
                        f"{r['server_us']:.0f} µs",
                        f"{r['client_us']:.0f} µs",
                        memory_note(r["memory"]),
                    )
                progress(f"OCSP over HTTP measured: {db_label}")
            table.notes = [
                "Closed loop: each client sends its next request when the previous answer arrives, so latency ≥"
                " clients ÷ throughput (Little's law): at 128 clients p99 ≤ 50 ms would need > 2,560 responses/s.",
                "No memory cache: PKI_OCSP_MEMORY_CACHE=False, the setting for app servers on several hosts that"
                " share no PKI_STATE_DIR — every answer is one indexed read of the pre-signed response.",
                "The OCSP service: certdesk/pki/asgi.py under gunicorn's uvicorn worker (HTTP parsed in C, an event"
                " loop), the views' answer functions in a pool of PKI_OCSP_SERVICE_THREADS threads. Baseline: the"
                f" portal's app server (config/wsgi.py, threaded worker, {args.threads} threads) answering the same"
                " requests through Django's URL resolver, middleware and views.",
            ]
            report.tables.append(table)
            at = {r["clients"]: r for r in ocsp_results if r["db"] == main_db}
            best = max((r["rate"] for r in at.values()), default=0.0)
            report.targets.append(
                Target(
                    "OCSP throughput",
                    "≥ 2,000 responses/s",
                    f"{main_db}: " + ", ".join(f"{c} clients {r['rate']:,.0f}/s" for c, r in sorted(at.items())),
                    best >= 2000,
                )
            )
            p99_ok = [r["p99"] <= 50 for c, r in at.items() if c <= 32]
            report.targets.append(
                Target(
                    "OCSP latency",
                    "p99 ≤ 50 ms (8 and 32 clients)",
                    ", ".join(f"{c} clients p99 {r['p99']:.0f} ms" for c, r in sorted(at.items())),
                    all(p99_ok) if p99_ok else None,
                )
            )
            rss = max((r["memory"]["app server"]["largest_mb"] for r in ocsp_results), default=0.0)
            report.targets.append(
                Target("app server RSS under OCSP load", "≤ 300 MB per process", f"{rss:.0f} MB", rss <= 300)
            )

        if "peer" in parts:
            _peer(report, cells, pg_admin, pg_prefix, work, seconds, progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if pg_admin:
            _pg_drop_prefix(pg_admin, pg_prefix)
    report.seconds = time.time() - began
    report.print()
    report.write_json(args.json)


def _peer(
    report: Report,
    cells: list[Cell],
    pg_admin: str | None,
    pg_prefix: str,
    work: Path,
    seconds: float,
    progress: Any,
) -> None:
    """django-ca 3.2 (its own virtualenv) on the same workloads, measured back to back with certdesk's."""
    python = peer.ensure_venv(progress)
    versions = peer.driver(python, "version")
    issue = Table(
        f"Peer: issuance, certdesk vs django-ca {versions['django-ca']} (Django {versions['django']}),"
        f" {CORES} processes, key files",
        [
            "database",
            "CA key",
            "rounds",
            "certdesk certificates/s",
            "django-ca certificates/s",
            "certdesk ÷ django-ca (median)",
            "django-ca without OCSP pre-signing",
            "django-ca peak RSS",
        ],
    )
    ratios = []
    for db_label in ["SQLite", *(["PostgreSQL"] if pg_admin else [])]:
        for algorithm in ALGORITHMS:
            peer_dir = work / f"peer-{db_label[:2].lower()}-{algorithm}"
            peer_dir.mkdir()
            if db_label == "SQLite":
                url = f"sqlite:///{peer_dir / 'peer.sqlite3'}"
            else:
                url = pg_database(pg_admin or "", f"{pg_prefix}_peer_{algorithm.replace('-', '_')}")
            peer.driver(python, "setup", work=peer_dir, db=url, algorithm=algorithm, count=300)
            cell = _cell(cells, db_label, algorithm)
            assert cell is not None
            # Back to back, the same number of processes; in rounds where the two are close (P-256), as the
            # machine's speed drifts between one measurement and the next.
            ours_rates, theirs_rates, peak_rss = [], [], 0.0
            for _round in range(PEER_ROUNDS if algorithm == "ec-p256" else 1):
                ours_rates.append(_rate("pipeline", cell, n=CORES, seconds=seconds).per_second)
                cached = peer.rate(
                    python,
                    "issue",
                    n=CORES,
                    seconds=seconds,
                    work=peer_dir,
                    db=url,
                    algorithm=algorithm,
                    ocsp_cache=True,
                )
                theirs_rates.append(cached["rate"])
                peak_rss = max(peak_rss, cached["peak_rss_mb"])
            plain = peer.rate(python, "issue", n=CORES, seconds=seconds, work=peer_dir, db=url, algorithm=algorithm)
            ratio = statistics.median(o / t for o, t in zip(ours_rates, theirs_rates, strict=True))
            ratios.append((db_label, algorithm, ratio))
            issue.add(
                db_label,
                ALGORITHMS[algorithm],
                len(ours_rates),
                ", ".join(f"{r:,.0f}" for r in ours_rates),
                ", ".join(f"{r:,.0f}" for r in theirs_rates),
                f"{ratio:.2f}×",
                f"{plain['rate']:,.0f}",
                f"{max(peak_rss, plain['peak_rss_mb']):.0f} MB",
            )
            if (db_label, algorithm) == ("PostgreSQL" if pg_admin else "SQLite", "ec-p256"):
                peer_ocsp = (peer_dir, url)
            progress(f"peer issuance measured: {db_label} {ALGORITHMS[algorithm]}")
    issue.notes = [
        "Both pre-sign the new certificate's OCSP response at issuance (django-ca: CA_OCSP_RESPONSE_CACHE_EXPIRES"
        " set); certdesk also records before signing, pkilints every certificate and commits each step —"
        " django-ca does neither. Its column without pre-signing is django-ca's default configuration.",
        f"Each round measures certdesk's certificate_issue() and then django-ca's issuance, both with {_plural(CORES)};"
        " the ratio is the median of the rounds' ratios.",
    ]
    report.tables.append(issue)
    report.targets.append(
        Target(
            "issuance ahead of django-ca",
            "certdesk ÷ django-ca ≥ 1",
            ", ".join(f"{db} {ALGORITHMS[a]} {r:.2f}×" for db, a, r in ratios),
            all(r >= 1 for _, _, r in ratios) if ratios else None,
        )
    )

    main_db = "PostgreSQL" if pg_admin else "SQLite"
    cell = _cell(cells, main_db)
    assert cell is not None
    our_ocsp = run_children(
        __file__, "ocsp-inproc", work=cell.work, db=cell.url, serials=",".join(cell.serials), seconds=seconds
    )[0]
    peer_dir, url = peer_ocsp
    theirs = {
        mode: peer.driver(
            python, "ocsp", work=peer_dir, db=url, count=300, seconds=seconds, ocsp_cache=(mode == "cached")
        )
        for mode in ("signed", "cached")
    }
    ocsp = Table(
        f"Peer: OCSP in one process through Django's test client ({main_db}, P-256, 300 certificates,"
        " SHA-256 CertIDs, no nonce)",
        ["server", "responses/s", "CPU per response", "peak RSS", "certdesk ÷ it"],
    )
    our_rate = our_ocsp["count"] / our_ocsp["seconds"]
    ocsp.add(
        "certdesk (pre-signed, memory cache)",
        f"{our_rate:,.0f}",
        f"{our_ocsp['cpu'] / our_ocsp['count'] * 1e6:.0f} µs",
        f"{our_ocsp['peak_rss_mb']:.0f} MB",
        "1.00×",
    )
    labels = {"signed": "django-ca default (signs every response)", "cached": "django-ca with its response cache"}
    for mode, r in theirs.items():
        rate = r["count"] / r["seconds"]
        ocsp.add(
            labels[mode],
            f"{rate:,.0f}",
            f"{r['cpu'] / r['count'] * 1e6:.0f} µs",
            f"{r['peak_rss_mb']:.0f} MB",
            f"{our_rate / rate:.2f}×",
        )
    ocsp.notes = ["The same requests, the same view path (URL resolution, middleware) without the network."]
    report.tables.append(ocsp)
    progress("peer OCSP measured")


if __name__ == "__main__":
    main()
