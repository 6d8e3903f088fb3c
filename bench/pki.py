"""CA engine benchmark: signing limits, the full issuance pipeline, OCSP over HTTP.

    .venv/bin/python bench/pki.py

Sets up Django itself (DJANGO_SETTINGS_MODULE=config.settings_test) with its own
temporary SQLite database and key directory, and a temporary PostgreSQL
database when one answers on DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/postgres). Each measurement runs in fresh
child processes (Django is configured once per process); the parent prints
one table. Everything it creates is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/postgres"
PASSPHRASE = "bench-passphrase"  # noqa: S105 - throwaway keys in a temp dir
USCC = "91110000600037341L"
ORG = "北京某某科技有限公司"


# --------------------------------------------------------------------------- child-side setup


def _django(work: Path, database_url: str) -> None:
    """Configure Django for this process: test settings, our database, our key directory."""
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings_test"
    os.environ["DATABASE_URL"] = database_url
    import config.settings_test as test_settings

    test_settings.PKI_KEY_DIR = work / "keys"  # type: ignore[attr-defined]
    test_settings.PKI_KEY_PASSPHRASE = PASSPHRASE  # type: ignore[attr-defined]
    test_settings.PKI_BASE_URL = "http://127.0.0.1:8000"  # type: ignore[attr-defined]
    import django

    django.setup()


def wsgi_app() -> Any:
    """gunicorn entry point (`bench.pki:wsgi_app()`): the project's WSGI app on the bench database."""
    _django(Path(os.environ["BENCH_PKI_WORK"]), os.environ["DATABASE_URL"])
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


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


def _wait_until(start_at: float) -> None:
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)


def child_setup(work: Path, database_url: str, certificates: int) -> dict[str, Any]:
    """Migrate, create the CA, issue some certificates (their OCSP responses are pre-signed)."""
    _django(work, database_url)
    from django.core.management import call_command

    from certdesk.pki.services import ca_hierarchy_init, certificate_issue
    from certdesk.pki.types import IssuanceRequest

    call_command("migrate", verbosity=0)
    ca_hierarchy_init()
    serials = []
    for csr in _csrs(certificates):
        result = certificate_issue(
            request=IssuanceRequest(profile="org-sign", organisation_name=ORG, uscc=USCC, csr_pem=csr)
        )
        serials.append(result.serial)
    return {"serials": serials}


def child_limits(work: Path, database_url: str, seconds: float, start_at: float, what: str) -> dict[str, Any]:
    """Sign-only and lint+sign loops with the issuing CA key: the ceilings, no database."""
    _django(work, database_url)
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from certdesk.pki import lint
    from certdesk.pki.keys import signature_hash
    from certdesk.pki.profiles import ORG_SIGN, certificate_builder, organisation_subject
    from certdesk.pki.selectors import ca_get
    from certdesk.pki.serials import serial_new
    from certdesk.pki.signers import signer_for

    signer = signer_for(ca_get(role="issuing"))
    if what == "hsm-sign":
        signer = _hsm_signer(work, signer)
    csr = x509.load_pem_x509_csr(_csrs(1)[0].encode())
    subject = organisation_subject(organisation_name=ORG, uscc=USCC, province="北京市", city="北京市").to_name()
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)

    def builder() -> x509.CertificateBuilder:
        return certificate_builder(
            profile=ORG_SIGN,
            subject=subject,
            public_key=csr.public_key(),  # type: ignore[arg-type]
            serial=serial_new(),
            not_before=now,
            not_after=now + datetime.timedelta(days=365),
            issuer=signer.certificate,
        )

    lint_key = lint.lint_signing_key(signer.key)
    hash_algorithm = signature_hash(signer.key)
    template = builder()
    done = 0
    _wait_until(start_at)
    c0 = time.process_time()
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while time.perf_counter() < deadline:
        if what in ("sign", "hsm-sign"):
            for _ in range(50):
                template.sign(signer.key, hash_algorithm)
            done += 50
        else:  # lint+sign: what issuance must do per certificate, without the database
            b = builder()
            pre = b.sign(lint_key, hash_algorithm)
            if lint.blocking(lint.lint_certificate(pre.public_bytes(serialization.Encoding.DER))):
                raise SystemExit("lint refused the benchmark certificate")
            b.sign(signer.key, hash_algorithm)
            done += 1
    return {"count": done, "seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def _hsm_signer(work: Path, signer: Any) -> Any:
    """The same certificate with a P-256 key generated on a fresh SoftHSM token (signing speed only)."""
    conf = work / "softhsm2.conf"
    tokens = work / "tokens"
    tokens.mkdir(exist_ok=True)
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "bench", "--so-pin", "12345678", "--pin", "1234"],
        check=True,
        capture_output=True,
    )
    from certdesk.pki.keys import KeyAlgorithm
    from certdesk.pki.keys.pkcs11 import Pkcs11KeyBackend
    from certdesk.pki.signers import Signer

    backend = Pkcs11KeyBackend(module="/usr/lib/softhsm/libsofthsm2.so", token_label="bench", pin="1234")  # noqa: S106
    key = backend.generate(key_ref="bench", algorithm=KeyAlgorithm.EC_P256)
    return Signer(ca_id=signer.ca_id, name="hsm", certificate=signer.certificate, key=key)


def child_pipeline(work: Path, database_url: str, seconds: float, start_at: float) -> dict[str, Any]:
    """certificate_issue() in a loop: parse+verify CSR, policy, record, lint, sign, store, pre-sign OCSP."""
    _django(work, database_url)
    from certdesk.pki.services import certificate_issue
    from certdesk.pki.types import IssuanceRequest

    requests = [
        IssuanceRequest(
            profile="org-sign", organisation_name=ORG, uscc=USCC, province="北京市", city="北京市", csr_pem=c
        )
        for c in _csrs(int(seconds * 450) + 50)
    ]
    certificate_issue(request=requests.pop())  # warm caches (keys, lint validators)
    done = 0
    _wait_until(start_at)
    c0 = time.process_time()
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while time.perf_counter() < deadline and requests:
        certificate_issue(request=requests.pop())
        done += 1
    return {"count": done, "seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def child_ocsp_requests(work: Path, database_url: str, serials: list[str]) -> dict[str, Any]:
    """DER OCSP requests (SHA-1 CertIDs, no nonce) for the given serials, hex-encoded."""
    _django(work, database_url)
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp

    from certdesk.pki.models import IssuedCertificate
    from certdesk.pki.selectors import ca_certificate_der

    issuer = x509.load_der_x509_certificate(ca_certificate_der(role="issuing"))
    out = []
    for record in IssuedCertificate.objects.filter(serial__in=serials):
        certificate = x509.load_der_x509_certificate(bytes(record.certificate_der or b""))
        request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1()).build()  # noqa: S303
        out.append(request.public_bytes(serialization.Encoding.DER).hex())
    return {"requests": out}


CHILDREN = {
    "setup": lambda a: child_setup(Path(a.work), a.db, a.count),
    "limits": lambda a: child_limits(Path(a.work), a.db, a.seconds, a.start_at, a.what),
    "pipeline": lambda a: child_pipeline(Path(a.work), a.db, a.seconds, a.start_at),
    "ocsp-requests": lambda a: child_ocsp_requests(Path(a.work), a.db, a.serials.split(",")),
}


# --------------------------------------------------------------------------- parent side


def _child(kind: str, work: Path, db: str, **kw: Any) -> dict[str, Any]:
    return _children(kind, work, db, n=1, **kw)[0]


def _children(kind: str, work: Path, db: str, *, n: int, **kw: Any) -> list[dict[str, Any]]:
    args = [PYTHON, __file__, "--child", kind, "--work", str(work), "--db", db]
    for key, value in kw.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT) for _ in range(n)
    ]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        if proc.returncode != 0:
            raise SystemExit(f"bench child {kind} failed:\n{stderr.decode()[-3000:]}")
        out.append(json.loads(stdout.decode().strip().splitlines()[-1]))
    return out


def _rate(kind: str, work: Path, db: str, *, n: int, seconds: float, **kw: Any) -> tuple[float, float]:
    """(operations per second, CPU milliseconds per operation in the measured processes)."""
    start_at = time.time() + 2.5 + n  # every process set up and waiting before the clock starts
    results = _children(kind, work, db, n=n, seconds=seconds, start_at=start_at, **kw)
    count = sum(r["count"] for r in results)
    return count / max(r["seconds"] for r in results), sum(r["cpu"] for r in results) / count * 1000


def _pg_url() -> str | None:
    url = os.environ.get("DATABASE_URL", DEFAULT_PG)
    if not url.startswith("postgres"):
        url = DEFAULT_PG
    try:
        import psycopg

        with psycopg.connect(url.replace("postgres://", "postgresql://"), connect_timeout=2):
            return url
    except Exception:
        return None


def _pg_database(admin_url: str, name: str, *, drop: bool = False) -> str:
    import psycopg

    with psycopg.connect(admin_url.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if not drop:
            conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    return f"{base}/{name}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _child_pids(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


async def _load(
    port: int, requests: list[bytes], *, clients: int, seconds: float, warmup: float, cpu_of: list[int]
) -> dict[str, Any]:
    """Closed-loop HTTP/1.1 clients on keep-alive connections, POSTing OCSP requests round-robin."""
    payloads = [
        (
            f"POST /pki/ocsp/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/ocsp-request\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in requests
    ]
    latencies: list[float] = []
    failures = 0
    counting = False

    async def client(index: int, stop: float) -> None:
        nonlocal failures
        reader = writer = None
        i = index
        while time.perf_counter() < stop:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            t = time.perf_counter()
            writer.write(payloads[i % len(payloads)])
            i += clients
            head = await reader.readuntil(b"\r\n\r\n")
            length, close = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and b"close" in value.lower():
                    close = True
            body = await reader.readexactly(length)
            if counting:
                latencies.append(time.perf_counter() - t)
                # A successful, signed response (status 0, responseBytes present), not an error stub.
                if not head.startswith(b"HTTP/1.1 200") or len(body) < 100:
                    failures += 1
            if close:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(client(i, time.perf_counter() + warmup) for i in range(clients)))
    counting = True
    server_cpu = _cpu_seconds(cpu_of)
    client_cpu = time.process_time()
    t0 = time.perf_counter()
    await asyncio.gather(*(client(i, t0 + seconds) for i in range(clients)))
    elapsed = time.perf_counter() - t0
    server_cpu = _cpu_seconds(cpu_of) - server_cpu
    client_cpu = time.process_time() - client_cpu
    latencies.sort()
    return {
        "server_us": server_cpu / max(1, len(latencies)) * 1e6,
        "client_us": client_cpu / max(1, len(latencies)) * 1e6,
        "rate": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "n": len(latencies),
        "failures": failures,
    }


def _ocsp_http(work: Path, db: str, serials: list[str], *, workers: int, threads: int) -> dict[str, Any]:
    requests = [bytes.fromhex(h) for h in _child("ocsp-requests", work, db, serials=",".join(serials))["requests"]]
    port = _free_port()
    env = {**os.environ, "BENCH_PKI_WORK": str(work), "DATABASE_URL": db, "PYTHONWARNINGS": "ignore"}
    server = subprocess.Popen(
        [
            str(Path(PYTHON).parent / "gunicorn"),
            "--chdir",
            str(ROOT),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread" if threads else "sync",  # --threads 0: sync workers, one request per connection
            "--threads",
            str(max(threads, 1)),
            "--keep-alive",
            "30",
            "--backlog",
            "256",
            "--log-level",
            "error",
            "bench.pki:wsgi_app()",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise SystemExit(
                        f"gunicorn did not start: {server.stderr.read().decode()[-2000:] if server.stderr else ''}"
                    ) from None
                time.sleep(0.2)
        pids = [server.pid, *_child_pids(server.pid)]
        result = asyncio.run(_load(port, requests, clients=32, seconds=6.0, warmup=1.5, cpu_of=pids))
        return result
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


def _plural(n: int) -> str:
    return f"{n} process{'es' if n > 1 else ''}"


def _limits(rows: list[tuple[str, str, str]], work: Path, db: str, cores: int, seconds: float) -> dict[int, float]:
    sign, cpu = _rate("limits", work, db, n=1, seconds=seconds, what="sign")
    rows.append(
        (
            "sign only, same key, P-256 in software (1 process)",
            f"{sign:,.0f} certificates/s",
            f"{cpu:.3f} ms CPU each: the signing limit",
        )
    )
    if shutil.which("softhsm2-util"):
        hsm, cpu = _rate("limits", work, db, n=1, seconds=seconds, what="hsm-sign")
        rows.append(
            (
                "sign only, same key, P-256 on SoftHSM (1 process)",
                f"{hsm:,.0f} certificates/s",
                f"{cpu:.3f} ms CPU each",
            )
        )
    limits = {}
    for n in sorted({1, cores}):
        limits[n], cpu = _rate("limits", work, db, n=n, seconds=seconds, what="lint+sign")
        rows.append(
            (
                f"lint + sign, no database ({_plural(n)})",
                f"{limits[n]:,.0f} certificates/s",
                f"{cpu:.2f} ms CPU each: the pipeline's limit",
            )
        )
    return limits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child")
    parser.add_argument("--work")
    parser.add_argument("--db")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=0)
    parser.add_argument("--start-at", type=float, default=0)
    parser.add_argument("--what", default="")
    parser.add_argument("--serials", default="")
    parser.add_argument("--seconds-each", type=float, default=4.0, help="length of each timed run")
    parser.add_argument("--parts", default="limits,pipeline,ocsp", help="comma-separated subset to run")
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers (default: one per core)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](args)))
        return

    began = time.time()
    cores = os.cpu_count() or 1
    parts = set(args.parts.split(","))
    seconds = args.seconds_each
    work = Path(tempfile.mkdtemp(prefix="certdesk-bench-pki-"))
    rows: list[tuple[str, str, str]] = []
    pg_admin = _pg_url()
    pg_name = f"certdesk_bench_pki_{os.getpid()}"

    def progress(text: str) -> None:
        print(f"[{time.time() - began:5.1f}s] {text}", file=sys.stderr)

    try:
        databases = {"SQLite": (work / "sqlite", f"sqlite:///{work / 'sqlite' / 'bench.sqlite3'}")}
        if pg_admin:
            databases["PostgreSQL"] = (work / "pg", _pg_database(pg_admin, pg_name))
        else:
            progress("no PostgreSQL reachable: SQLite only")
        serials: dict[str, list[str]] = {}
        for label, (dir_, url) in databases.items():
            dir_.mkdir()
            serials[label] = _child("setup", dir_, url, count=400)["serials"]
            progress(f"{label}: CA initialised, 400 certificates issued")

        limits: dict[int, float] = {}
        if parts & {"limits", "pipeline"}:
            limits = _limits(rows, *databases["SQLite"], cores, seconds)
            progress("limits measured")
        if "pipeline" in parts:
            for label, (dir_, url) in databases.items():
                for n in sorted({1, cores}):
                    rate, cpu = _rate("pipeline", dir_, url, n=n, seconds=seconds)
                    rows.append(
                        (
                            f"issuance pipeline, {label} ({_plural(n)})",
                            f"{rate:,.0f} certificates/s",
                            f"{rate / limits[n] * 100:.0f}% of lint + sign ({_plural(n)}); {cpu:.2f} ms CPU each",
                        )
                    )
                progress(f"{label} pipeline measured")
        if "ocsp" in parts:
            workers = args.workers or cores
            for label, (dir_, url) in databases.items():
                result = _ocsp_http(dir_, url, serials[label], workers=workers, threads=args.threads)
                rows.append(
                    (
                        f"OCSP over HTTP, {label} (gunicorn {workers}×{args.threads} threads, 32 clients)",
                        f"{result['rate']:,.0f} responses/s",
                        f"p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms, {result['failures']} failed; "
                        f"CPU per response: server {result['server_us']:.0f} µs, client {result['client_us']:.0f} µs",
                    )
                )
                progress(f"{label} OCSP measured")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if pg_admin:
            _pg_database(pg_admin, pg_name, drop=True)

    load = os.getloadavg()
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(
        f"\nCA engine benchmark ({cores} cores, {time.time() - began:.0f} s; load average at the end "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}: other work on the machine lowers every rate)\n"
    )
    print(f"{'measurement':<{width}}  {'result':>{value_width}}  note")
    print("-" * (width + value_width + 40))
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>{value_width}}  {note}")
    print(
        "\ntargets: pipeline ≥ 200 certificates/s and ≥ 50% of lint + sign; OCSP ≥ 2,000 responses/s with p99 ≤ 50 ms"
    )


if __name__ == "__main__":
    main()
