"""The peer: django-ca driven through its Python API, for bench/pki.py. Runs in its own virtualenv.

    var/bench-django-ca-venv/bin/python bench/django_ca_driver.py setup|issue|ocsp --work DIR --db URL ...

`bench/peer.py` creates that virtualenv (django-ca and its own Django, from
PyPI) and runs this file there, one process per measurement; each prints one
JSON line. It imports nothing from certdesk: the two projects never share a
process. Settings are made here with `settings.configure()`: django-ca's
storages key backend (private keys as files), its database OCSP responder key
backend, SQLite in WAL mode with IMMEDIATE transactions (as certdesk uses it)
or PostgreSQL, the local-memory cache, no Celery (tasks run in-process).

`--ocsp-cache` sets CA_OCSP_RESPONSE_CACHE_EXPIRES (django-ca 3.2): issuance
then pre-signs each certificate's OCSP response, as certdesk always does, and
the OCSP view serves pre-signed responses (SHA-256 CertIDs only).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

USCC = "91110000600037341L"
ORG = "北京某某科技有限公司"
HOSTNAME = "127.0.0.1:8001"


def _database(url: str) -> dict[str, Any]:
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": parsed.path,
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parsed.path.lstrip("/"),
        "USER": parsed.username or "postgres",
        "PASSWORD": parsed.password or "",
        "HOST": parsed.hostname or "127.0.0.1",
        "PORT": str(parsed.port or 5432),
        "CONN_MAX_AGE": 60,
    }


urlpatterns: list[Any] = []


def configure(work: Path, db: str, *, ocsp_cache: bool) -> None:
    from django.conf import settings

    files = work / "files"
    files.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {}
    if ocsp_cache:
        options["CA_OCSP_RESPONSE_CACHE_EXPIRES"] = datetime.timedelta(hours=24)
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only-" + "x" * 50,
        ALLOWED_HOSTS=["*"],
        USE_TZ=True,
        TIME_ZONE="UTC",
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.staticfiles",
            "django_object_actions",
            "django_ca",
        ],
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        ROOT_URLCONF=__name__,
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {"context_processors": []},
            }
        ],
        DATABASES={"default": _database(db)},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        STATIC_URL="/static/",
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
            "django-ca": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {
                    "location": str(files),
                    "file_permissions_mode": 0o600,
                    "directory_permissions_mode": 0o700,
                },
            },
        },
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        CA_DEFAULT_HOSTNAME=HOSTNAME,
        CA_USE_CELERY=False,
        CA_ENABLE_ACME=False,
        LOGGING={"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}},
        **options,
    )
    import django
    from django.urls import include, path

    django.setup()
    urlpatterns.append(path("django_ca/", include("django_ca.urls")))


def _key_options(algorithm: str, path: str) -> Any:
    from django_ca.key_backends.storages.models import StoragesCreatePrivateKeyOptions

    if algorithm == "rsa-2048":
        return StoragesCreatePrivateKeyOptions(key_type="RSA", key_size=2048, password=None, path=Path(path))
    return StoragesCreatePrivateKeyOptions(key_type="EC", password=None, path=Path(path), elliptic_curve="secp256r1")


def _use_options() -> Any:
    from django_ca.key_backends.storages.models import StoragesUsePrivateKeyOptions

    return StoragesUsePrivateKeyOptions(password=None)


def _subject() -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "北京市"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "北京市"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG),
            x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, f"NTRCN-{USCC}"),
            x509.NameAttribute(NameOID.COMMON_NAME, ORG),
        ]
    )


def _csrs(n: int) -> list[Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ORG)])
    return [
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
        for _ in range(n)
    ]


def _issuing_ca() -> Any:
    from django_ca.models import CertificateAuthority

    return CertificateAuthority.objects.get(name="bench-issuing")


def _issue(ca: Any, csr: Any) -> Any:
    from django_ca.models import Certificate
    from django_ca.profiles import profiles

    return Certificate.objects.create_cert(
        ca,
        _use_options(),
        csr,
        profile=profiles["client"],
        subject=_subject(),
        not_after=datetime.timedelta(days=365),
    )


def setup(args: argparse.Namespace) -> dict[str, Any]:
    """Migrate; a root and an issuing CA (as certdesk's hierarchy), the OCSP responder key; some certificates."""
    from django.core.management import call_command
    from django_ca.key_backends import key_backends
    from django_ca.models import CertificateAuthority

    call_command("migrate", verbosity=0)
    backend = key_backends["default"]
    now = datetime.datetime.now(datetime.UTC)
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> Any:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bench"),
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
            ]
        )

    key_type = "RSA" if args.algorithm == "rsa-2048" else "EC"
    root = CertificateAuthority.objects.init(
        name="bench-root",
        key_backend=backend,
        key_backend_options=_key_options(args.algorithm, "root.key"),
        subject=name("bench root"),
        not_after=now + datetime.timedelta(days=3650),
        key_type=key_type,
        path_length=1,
    )
    issuing = CertificateAuthority.objects.init(
        name="bench-issuing",
        key_backend=backend,
        key_backend_options=_key_options(args.algorithm, "issuing.key"),
        subject=name("bench issuing"),
        not_after=now + datetime.timedelta(days=1825),
        key_type=key_type,
        parent=root,
        use_parent_private_key_options=_use_options(),
        path_length=0,
    )
    issuing.generate_ocsp_key(_use_options())
    serials = [_issue(issuing, csr).serial for csr in _csrs(args.count)]
    return {"serials": serials}


def issue(args: argparse.Namespace) -> dict[str, Any]:
    """create_cert() in a loop for `--seconds`: build, sign, store (and pre-sign OCSP with --ocsp-cache)."""
    ca = _issuing_ca()
    csrs = _csrs(int(args.seconds * 1500) + 50)  # more than one process issues in that time
    _issue(ca, csrs.pop())  # warm caches
    if os.environ.get("BENCH_BARRIER"):  # started with others: wait for the parent's "go" (bench/common.py)
        print("ready", flush=True)
        sys.stdin.readline()
    done = 0
    c0 = time.process_time()
    t0 = time.perf_counter()
    deadline = t0 + args.seconds
    while time.perf_counter() < deadline and csrs:
        _issue(ca, csrs.pop())
        done += 1
    return {"count": done, "seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def ocsp(args: argparse.Namespace) -> dict[str, Any]:
    """The OCSP view through Django's test client for `--seconds`: SHA-256 CertIDs, no nonce, round-robin."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp as x509_ocsp
    from django.test import Client
    from django.urls import reverse
    from django_ca.models import Certificate

    ca = _issuing_ca()
    issuer = ca.pub.loaded
    requests = []
    for cert in Certificate.objects.filter(ca=ca)[: args.count]:
        if args.ocsp_cache and not cert.ocsp_response:
            cert.generate_ocsp_response()
        request = x509_ocsp.OCSPRequestBuilder().add_certificate(cert.pub.loaded, issuer, hashes.SHA256()).build()
        requests.append(request.public_bytes(serialization.Encoding.DER))
    url = reverse("django_ca:ocsp-cert-post", kwargs={"serial": ca.serial})
    client = Client()

    def one(i: int) -> None:
        reply = client.post(url, data=requests[i % len(requests)], content_type="application/ocsp-request")
        response = x509_ocsp.load_der_ocsp_response(reply.content)
        if response.response_status != x509_ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise SystemExit(f"django-ca OCSP answered {response.response_status}")
        if response.certificate_status != x509_ocsp.OCSPCertStatus.GOOD:
            raise SystemExit("django-ca OCSP: not good")

    for i in range(len(requests)):
        one(i)  # warm: every response once (fills the cache in cached mode)
    done = 0
    c0 = time.process_time()
    t0 = time.perf_counter()
    deadline = t0 + args.seconds
    while time.perf_counter() < deadline:
        for _ in range(20):
            one(done)
            done += 1
    del x509
    return {"count": done, "seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["setup", "issue", "ocsp", "version"])
    parser.add_argument("--work", default="")
    parser.add_argument("--db", default="")
    parser.add_argument("--algorithm", default="ec-p256", choices=["ec-p256", "rsa-2048"])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--ocsp-cache", action="store_true")
    args = parser.parse_args()
    if args.mode == "version":
        from importlib.metadata import version

        print(
            json.dumps(
                {"django-ca": version("django-ca"), "django": version("django"), "python": sys.version.split()[0]}
            )
        )
        return
    # django-ca 3.2 refuses to pre-sign a root CA's OCSP response while it creates the root, so
    # the hierarchy is made without the response cache; certificates issued later use it.
    configure(Path(args.work), args.db, ocsp_cache=args.ocsp_cache and args.mode != "setup")
    result = {"setup": setup, "issue": issue, "ocsp": ocsp}[args.mode](args)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["pid"] = os.getpid()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
