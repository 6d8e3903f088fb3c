"""Portal under load: order list, order detail and review queue with 100,000 orders in PostgreSQL.

    .venv/bin/python bench/portal.py [--orders 100000] [--seconds 6] [--json FILE]

Production settings (CERTDESK_PRODUCTION=true, DEBUG off, a generated
SECRET_KEY, collectstatic + CompressedManifestStaticFilesStorage) on a
dedicated PostgreSQL database that this script creates and drops. The app
server is gunicorn with deploy/gunicorn.conf.py; a `manage.py db_worker`
runs beside it and works through queued tasks during the load.

1. Seed 1,000 orders (50 customers with 20 orders each) with COPY, count the
   SQL queries of each page through Django's test client; grow to 100,000
   orders (99,000 more for 5,000 other customers, ~10% waiting for review),
   count again: the counts must not change.
2. 50 customers and 50 reviewers with real sessions (customers logged in,
   reviewers past the TOTP step as tests/conftest.py does it).
3. HTTP load on loopback: each page with 50 closed-loop users (no pause:
   the server's capacity), then 50 users clicking about once a second
   (40 customers on list and detail, 10 reviewers on the queue) for the
   p99 target. The baseline is the anonymous home page under the same load.
Peak RSS of the gunicorn master and workers and of the db_worker is sampled
throughout.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    CORES,
    ROOT,
    MemorySampler,
    Report,
    Table,
    Target,
    child_main,
    child_pids,
    db_worker,
    gunicorn,
    http_load,
    memory_note,
    pg_admin_url,
    pg_database,
    progress_clock,
    raw_request,
    redis_database,
    run_children,
)

BENCH_CUSTOMERS = 50
ORDERS_PER_BENCH_CUSTOMER = 20
OTHER_CUSTOMERS = 5000
REVIEWERS = 50
# The bench's own Redis database (emptied before and after): the cache and cached sessions.
BENCH_REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
WORKER_TASKS = 5000  # enough to keep the worker busy through the whole load, the paced phase included
PASSWORD = "Bench-Pass-2026"  # noqa: S105 - throwaway users in a throwaway database
PAGES = ("order list", "order detail", "review queue")


def production_env(work: Path, database_url: str, secret_key: str, cache_url: str | None) -> dict[str, str]:
    """The environment of every process of this benchmark: production settings, our database, and, as
    deploy/certdesk.env.example has it, the Redis cache with sessions read from it (when Redis answers)."""
    cache = (
        {"CACHE_URL": cache_url, "SESSION_ENGINE": "django.contrib.sessions.backends.cached_db"} if cache_url else {}
    )
    return {
        **cache,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "CERTDESK_PRODUCTION": "true",
        "CERTDESK_DEMO": "false",
        "DEBUG": "false",
        "SECRET_KEY": secret_key,
        "DATABASE_URL": database_url,
        # No TLS proxy on loopback; the cookies stay Secure (the test client and our driver send them anyway).
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "STATIC_ROOT": str(work / "static"),
        "STATICFILES_BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage",
        "WHITENOISE_USE_FINDERS": "false",
        "MEDIA_ROOT": str(work / "media"),
        "LOG_LEVEL": "WARNING",
    }


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# --------------------------------------------------------------------------- children


def child_setup() -> dict[str, Any]:
    """Migrate, collect static files, load the demo catalogue, make the users."""
    _django()
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from certdesk.accounts.models import User
    from certdesk.accounts.roles import ROLE_REVIEWER, staff_roles_ensure
    from certdesk.catalog.services import catalog_load_demo

    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--noinput", verbosity=0)
    catalog_load_demo()
    staff_roles_ensure()
    password = make_password(PASSWORD)  # once: Argon2 is slow on purpose
    customers = [User(mobile=f"137{i:08d}", password=password) for i in range(BENCH_CUSTOMERS + OTHER_CUSTOMERS)]
    User.objects.bulk_create(customers, batch_size=2000)
    reviewers = User.objects.bulk_create(
        # Two more than under load: the query counts sign in their own (a TOTP code counts once per device).
        [User(mobile=f"139{i:08d}", password=password, is_staff=True) for i in range(REVIEWERS + 2)]
    )
    group = Group.objects.get(name=ROLE_REVIEWER)
    group.user_set.add(*reviewers)
    TOTPDevice.objects.bulk_create([TOTPDevice(user=u, name="staff", confirmed=True) for u in reviewers])
    return {}


def _order_row_template() -> tuple[list[str], dict[str, Any]]:
    """Column names and database values of one filled-in order (sealed ID numbers included)."""
    from django.db import connection

    from certdesk.orders.models import Order

    info = {
        "cert_org_name": "重庆东方测试有限公司",
        "cert_uscc": "91110000600037341L",
        "org_name": "重庆东方测试有限公司",
        "org_uscc": "91110000600037341L",
        "legal_rep_name": "张三",
        "legal_rep_id_number": "360426199101010071",
        "legal_rep_mobile": "13500000000",
        "invoice_type": "normal",
        "invoice_title": "重庆东方测试有限公司",
        "invoice_taxpayer_id": "91110000600037341L",
        "invoice_email": "invoice@example.com",
        "agent_name": "李四",
        "agent_id_number": "11010519491231002X",
        "agent_mobile": "13600000000",
        "agent_email": "agent@example.com",
        "delivery_method": "mail",
        "recipient_name": "李四",
        "recipient_phone": "13600000000",
        "shipping_address": "重庆市渝中区测试路1号",
    }
    template = Order(**info)
    columns, values = [], {}
    for field in Order._meta.concrete_fields:
        if field.primary_key:
            continue
        value = getattr(template, field.attname)
        columns.append(field.column)
        values[field.column] = field.get_db_prep_save(value, connection) if value is not None else None
    return columns, values


def child_seed(total: int) -> dict[str, Any]:
    """Grow the orders table to `total` rows with COPY (events and uploads with them)."""
    _django()
    import datetime

    from django.db import connection, transaction
    from django.utils import timezone

    from certdesk.accounts.models import User
    from certdesk.catalog.models import CertificateType, MaterialKind
    from certdesk.core.choices import BusinessType
    from certdesk.orders.models import Order, OrderStatus

    t0 = time.perf_counter()
    start = Order.objects.count()
    if start >= total:
        return {"seconds": 0.0, "orders": start}
    customers = list(User.objects.filter(is_staff=False).order_by("id").values_list("id", flat=True))
    bench_customers, others = customers[:BENCH_CUSTOMERS], customers[BENCH_CUSTOMERS:]
    type_ids = list(CertificateType.objects.values_list("id", flat=True))
    kind_ids = list(MaterialKind.objects.values_list("id", flat=True))[:5]
    statuses = [s.value for s in OrderStatus]
    business = [b.value for b in BusinessType]
    columns, template = _order_row_template()
    now = timezone.now()
    bench_orders = BENCH_CUSTOMERS * ORDERS_PER_BENCH_CUSTOMER

    def row(i: int) -> tuple[Any, ...]:
        if i < bench_orders:  # the 50 customers under load: 20 orders each, every status
            owner = bench_customers[i % BENCH_CUSTOMERS]
            status = statuses[(i // BENCH_CUSTOMERS) % len(statuses)]
        else:
            owner = others[i % len(others)]
            status = OrderStatus.SUBMITTED.value if i % 10 == 0 else statuses[i % len(statuses)]
        created = now - datetime.timedelta(minutes=i)
        submitted = status != OrderStatus.DRAFT.value
        values = {
            **template,
            "number": f"BN{i:012d}",
            "owner_id": owner,
            "business_type": business[i % len(business)],
            "status": status,
            "certificate_type_id": type_ids[i % len(type_ids)],
            "created_at": created,
            "updated_at": created,
            "submitted_at": created if submitted else None,
            "review_due_at": created + datetime.timedelta(days=1) if submitted else None,
            "agreement_accepted_at": created,
            "amount_fen": 50000,
        }
        return tuple(values[c] for c in columns)

    with transaction.atomic():
        connection.ensure_connection()
        raw = connection.connection
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY orders_order ({', '.join(columns)}) FROM STDIN") as copy:
                for i in range(start, total):
                    copy.write_row(row(i))
            cursor.execute("SELECT id, number FROM orders_order WHERE number >= %s", [f"BN{start:012d}"])
            ids = {number: pk for pk, number in cursor.fetchall()}
            with cursor.copy(
                "COPY orders_orderevent (order_id, kind, from_status, to_status, actor_id, note, data, created_at)"
                " FROM STDIN"
            ) as copy:
                for i in range(start, total):
                    pk = ids[f"BN{i:012d}"]
                    created = now - datetime.timedelta(minutes=i)
                    kinds = ["created", "info_saved", "agreement_accepted", "material_uploaded", "submitted"]
                    for k, kind in enumerate(kinds if i < bench_orders else kinds[:1] + kinds[-1:]):
                        copy.write_row((pk, kind, "", "", None, "", "{}", created + datetime.timedelta(seconds=k)))
            with cursor.copy(
                "COPY materials_materialupload (order_id, kind_id, file, extension, content_type, original_name,"
                " size, width, height, sha256, channel, uploaded_at) FROM STDIN"
            ) as copy:
                for i in range(start, min(total, bench_orders)):
                    pk = ids[f"BN{i:012d}"]
                    for kind_id in kind_ids:
                        copy.write_row(
                            (
                                pk,
                                kind_id,
                                f"uploads/bench/{i}-{kind_id}.png",
                                "png",
                                "image/png",
                                "scan.png",
                                123456,
                                1200,
                                1600,
                                "0" * 64,
                                "pc",
                                now,
                            )
                        )
    # After a bulk load, as an operator would (autovacuum would get there later, in the middle of a run):
    # the visibility map lets the queue's COUNT read the index alone.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) orders_order, orders_orderevent, materials_materialupload")
    return {"seconds": time.perf_counter() - t0, "orders": Order.objects.count()}


def _staff_client(user: Any) -> Any:
    """A test client past the staff TOTP step, the real way (tests/conftest.py::staff_client_for)."""
    from django.test import Client
    from django.urls import reverse

    from certdesk.accounts.otp import demo_current_code, staff_otp_device

    client = Client()
    client.force_login(user)
    response = client.post(reverse("staff_otp"), {"token": demo_current_code(staff_otp_device(user=user))})
    if response.status_code != 302:
        raise SystemExit(f"staff TOTP step refused: {response.status_code}")
    return client


def child_queries(which: int) -> dict[str, Any]:
    """SQL queries and in-process time of each page, through Django's test client."""
    _django()
    from django.db import connection
    from django.test import Client

    from certdesk.accounts.models import User
    from certdesk.orders.models import Order

    customer = User.objects.filter(is_staff=False).order_by("id").first()
    reviewer = User.objects.filter(is_staff=True).order_by("id")[REVIEWERS + which]
    assert customer and reviewer
    number = Order.objects.filter(owner=customer).order_by("id").values_list("number", flat=True).first()
    client = Client()
    client.force_login(customer)
    staff = _staff_client(reviewer)
    anonymous = Client()
    pages = {
        "home (baseline)": (anonymous, "/"),
        "order list": (client, "/orders/"),
        "order detail": (client, f"/orders/{number}/"),
        "review queue": (staff, "/staff/review/"),
    }
    out: dict[str, Any] = {
        "orders": Order.objects.count(),
        "submitted": Order.objects.filter(status="submitted").count(),
    }
    for name, (c, path) in pages.items():
        c.get(path)  # warm
        # Each request starts by clearing connection.queries (request_started → reset_queries),
        # so read what this one request left there.
        connection.force_debug_cursor = True
        try:
            response = c.get(path)
            captured = list(connection.queries)
        finally:
            connection.force_debug_cursor = False
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code}")
        times = []
        for _ in range(20):
            t = time.perf_counter()
            c.get(path)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        out[name] = {
            "queries": len(captured),
            "ms": times[len(times) // 2],
            "bytes": len(response.content),
            "sql": [q["sql"][:200] for q in captured],
        }
    return out


def child_sessions() -> dict[str, Any]:
    """Session cookies for the users under load, their order numbers, and queued work for the worker."""
    _django()
    from django.conf import settings
    from django.test import Client

    from certdesk.accounts.models import User
    from certdesk.notifications.tasks import sms_deliver
    from certdesk.orders.models import Order

    cookie = settings.SESSION_COOKIE_NAME
    customers = []
    for user in User.objects.filter(is_staff=False).order_by("id")[:BENCH_CUSTOMERS]:
        client = Client()
        client.force_login(user)
        numbers = list(Order.objects.filter(owner=user).values_list("number", flat=True))
        customers.append({"cookie": client.cookies[cookie].value, "orders": numbers})
    staff = [
        _staff_client(u).cookies[cookie].value for u in User.objects.filter(is_staff=True).order_by("id")[:REVIEWERS]
    ]
    for i in range(WORKER_TASKS):
        sms_deliver.enqueue(mobile=f"137{i:08d}", text=f"【bench】第 {i} 条通知", template="notification", params={})
    return {"cookie_name": cookie, "customers": customers, "staff": staff}


def child_worker_stats() -> dict[str, Any]:
    _django()
    from django_tasks_db.models import DBTaskResult

    rows = DBTaskResult.objects.values_list("status", flat=True)
    counts: dict[str, int] = {}
    for status in rows:
        counts[status] = counts.get(status, 0) + 1
    return {"counts": counts}


CHILDREN = {
    "setup": lambda a: child_setup(),
    "seed": lambda a: child_seed(a.total),
    "queries": lambda a: child_queries(a.total),
    "sessions": lambda a: child_sessions(),
    "worker-stats": lambda a: child_worker_stats(),
}


# --------------------------------------------------------------------------- parent


def _scripts(sessions: dict[str, Any], page: str) -> list[list[tuple[str, bytes]]]:
    name = sessions["cookie_name"]
    if page == "home (baseline)":
        return [[(page, raw_request("GET", "/"))] for _ in range(50)]
    if page == "review queue":
        return [
            [
                (page, raw_request("GET", f"/staff/review/?page={p}", headers={"Cookie": f"{name}={c}"}))
                for p in (1, 2, 3)
            ]
            for c in sessions["staff"]
        ]
    out = []
    for customer in sessions["customers"]:
        headers = {"Cookie": f"{name}={customer['cookie']}"}
        if page == "order list":
            out.append([(page, raw_request("GET", "/orders/", headers=headers))])
        else:
            out.append([(page, raw_request("GET", f"/orders/{n}/", headers=headers)) for n in customer["orders"]])
    return out


def _mixed(sessions: dict[str, Any]) -> list[list[tuple[str, bytes]]]:
    """40 customers (list, then a few orders) and 10 reviewers (queue pages)."""
    name = sessions["cookie_name"]
    scripts = []
    for customer in sessions["customers"][:40]:
        headers = {"Cookie": f"{name}={customer['cookie']}"}
        script = []
        for n in customer["orders"][:5]:
            script.append(("order list", raw_request("GET", "/orders/", headers=headers)))
            script.append(("order detail", raw_request("GET", f"/orders/{n}/", headers=headers)))
        scripts.append(script)
    for c in sessions["staff"][:10]:
        headers = {"Cookie": f"{name}={c}"}
        scripts.append(
            [("review queue", raw_request("GET", f"/staff/review/?page={p}", headers=headers)) for p in (1, 2)]
        )
    return scripts


def _ok(head: bytes, body: bytes) -> bool:
    # 200 with a whole page (a login redirect would be a 302 with no body).
    return head.startswith(b"HTTP/1.1 200") and body.rstrip().endswith(b"</html>")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child")
    parser.add_argument("--total", type=int, default=0)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each closed-loop load phase")
    # The paced phase is what the p99 target reads: 10 reviewers pausing ~1 s make ~8 queue requests a
    # second, so 12 s gave ~100 samples and the p99 was the second-slowest request of the run.
    parser.add_argument(
        "--mixed-seconds",
        type=float,
        default=45.0,
        help="length of the paced phase (p99 wants several hundred samples a page)",
    )
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers (default: deploy/gunicorn.conf.py)")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json")
    parser.add_argument("--keep", action="store_true", help="keep the database and work directory (to profile)")
    args = parser.parse_args()
    if args.child:
        child_main(CHILDREN, args)
        return

    began = time.time()
    progress = progress_clock()
    report = Report("Portal benchmark (bench/portal.py)", "make bench  # or: .venv/bin/python bench/portal.py")
    admin = pg_admin_url()
    if not admin:
        report.skip("no PostgreSQL answers on DATABASE_URL", args.json)
        return
    work = Path(tempfile.mkdtemp(prefix="certdesk-bench-portal-"))
    name = f"certdesk_bench_{os.getpid()}"
    workers = args.workers or CORES
    env: dict[str, str] = {}
    try:
        url = pg_database(admin, name)
        cache_url = redis_database(BENCH_REDIS)
        env = production_env(work, url, secrets.token_urlsafe(50), cache_url)
        if not cache_url:
            progress(f"no Redis at {BENCH_REDIS} (or no redis package): sessions in PostgreSQL only")

        def child(kind: str, **kw: Any) -> dict[str, Any]:
            return run_children(__file__, kind, env=env, timeout=900, **kw)[0]

        child("setup")
        progress("database migrated, static files collected, users made")
        small = BENCH_CUSTOMERS * ORDERS_PER_BENCH_CUSTOMER
        seed_small = child("seed", total=small)
        q_small = child("queries", total=0)
        progress(f"{small:,} orders seeded in {seed_small['seconds']:.1f} s, queries counted")
        seed_big = child("seed", total=args.orders)
        q_big = child("queries", total=1)
        progress(f"{args.orders:,} orders seeded in {seed_big['seconds']:.1f} s, queries counted")

        queries = Table(
            "SQL queries per page (Django test client, production settings): constant in the number of orders",
            [
                "page",
                f"queries at {q_small['orders']:,} orders",
                f"queries at {q_big['orders']:,} orders",
                f"in-process time at {q_small['orders']:,}",
                f"at {q_big['orders']:,}",
                "page size",
            ],
        )
        for page in ("home (baseline)", *PAGES):
            queries.add(
                page,
                q_small[page]["queries"],
                q_big[page]["queries"],
                f"{q_small[page]['ms']:.1f} ms",
                f"{q_big[page]['ms']:.1f} ms",
                f"{q_big[page]['bytes'] / 1024:.0f} KiB",
            )
        queries.notes = [
            f"Each customer has {ORDERS_PER_BENCH_CUSTOMER} orders (the list shows all of them); the review queue"
            f" shows 20 of {q_small['submitted']:,} and then {q_big['submitted']:,} orders waiting for review.",
            f"Seeding (COPY): {seed_small['seconds']:.1f} s for the first {small:,} orders,"
            f" {seed_big['seconds']:.1f} s for the next {args.orders - small:,} (with their events and uploads).",
        ]
        report.tables.append(queries)
        constant = all(q_small[p]["queries"] == q_big[p]["queries"] for p in PAGES)
        report.targets.append(
            Target(
                "SQL queries per page",
                "constant from 1k to 100k orders",
                ", ".join(f"{p} {q_small[p]['queries']}→{q_big[p]['queries']}" for p in PAGES),
                constant,
            )
        )

        sessions = child("sessions")
        progress(
            f"{len(sessions['customers'])} customer and {len(sessions['staff'])} reviewer sessions;"
            f" {WORKER_TASKS} tasks queued for the worker"
        )
        load = Table(
            f"HTTP load on loopback: gunicorn {workers} workers × {args.threads} threads (deploy/gunicorn.conf.py),"
            f" production settings, {args.orders:,} orders in PostgreSQL, a db_worker running queued tasks",
            [
                "page",
                "users",
                "pause between clicks",
                "requests/s",
                "p50",
                "p99",
                "failed",
                "vs baseline",
                "server CPU/request",
            ],
        )
        memory = MemorySampler()
        results: dict[str, Any] = {}
        with (
            gunicorn(
                "config.wsgi:application",
                env=env,
                workers=workers,
                threads=args.threads,
                config=ROOT / "deploy" / "gunicorn.conf.py",
                extra=["--max-requests", "0"],
            ) as (port, server),
            db_worker(env) as worker,
        ):
            memory.watch("app server", server.pid)
            memory.watch("worker", worker.pid)
            worker_t0 = time.time()
            with memory:
                pids = [server.pid, *child_pids(server.pid)]
                for page in ("home (baseline)", *PAGES):
                    results[page] = http_load(
                        port, _scripts(sessions, page), seconds=args.seconds, warmup=1.0, cpu_of=pids, ok=_ok
                    )
                    progress(f"{page}: {results[page].rate:,.0f} requests/s, p99 {results[page].p99:.0f} ms")
                results["mixed"] = http_load(
                    port, _mixed(sessions), seconds=args.mixed_seconds, warmup=2.0, cpu_of=pids, ok=_ok, think=1.0
                )
                progress(f"50 users pausing ~1 s: {results['mixed'].rate:,.0f} requests/s")
            worker_seconds = time.time() - worker_t0
        stats = child("worker-stats")["counts"]
        base = results["home (baseline)"].rate
        for page in ("home (baseline)", *PAGES):
            r = results[page]
            load.add(
                page,
                r.clients,
                "none (capacity)",
                f"{r.rate:,.0f}",
                f"{r.p50:.1f} ms",
                f"{r.p99:.1f} ms",
                r.failures,
                f"{r.rate / base:.2f}×",
                f"{r.server_us / 1000:.1f} ms",
            )
        mixed = results["mixed"]
        for page in PAGES:
            b = mixed.by_label.get(page, {})
            load.add(
                page,
                f"{mixed.clients} (mixed)",
                "0.5–1.5 s",
                f"{b.get('rate', 0):,.1f}",
                f"{b.get('p50', float('nan')):.1f} ms",
                f"{b.get('p99', float('nan')):.1f} ms",
                "",
                "",
                "",
            )
        load.add(
            "all, mixed",
            mixed.clients,
            "0.5–1.5 s",
            f"{mixed.rate:,.1f}",
            f"{mixed.p50:.1f} ms",
            f"{mixed.p99:.1f} ms",
            mixed.failures,
            "",
            f"{mixed.server_us / 1000:.1f} ms",
        )
        done = stats.get("SUCCESSFUL", 0)
        mem = memory.report()
        load.notes = [
            "No pause: 50 closed-loop users, each sending its next request when the last answer arrives — the"
            " server's capacity; latency is then at least 50 ÷ throughput (Little's law).",
            "Mixed: 40 customers (order list, then an order) and 10 reviewers (queue pages), each pausing"
            " 0.5–1.5 s between clicks — 50 people working briskly.",
            f"Memory: {memory_note(mem)}.",
            f"Worker: {done:,} of {WORKER_TASKS:,} queued tasks done during the {worker_seconds:.0f} s of load"
            f" (statuses {json.dumps(stats)}).",
        ]
        report.tables.append(load)
        worst = max(mixed.by_label.get(p, {}).get("p99", float("inf")) for p in PAGES)
        report.targets.append(
            Target(
                "portal p99 at 50 users",
                "≤ 100 ms",
                "mixed, pausing ~1 s: "
                + ", ".join(f"{p} {mixed.by_label.get(p, {}).get('p99', float('nan')):.0f} ms" for p in PAGES)
                + "; without pause (capacity): "
                + ", ".join(f"{p} {results[p].p99:.0f} ms" for p in PAGES),
                worst <= 100,
            )
        )
        app = mem["app server"]["largest_mb"]
        wrk = mem["worker"]["largest_mb"]
        report.targets.append(
            Target("app server RSS under portal load", "≤ 300 MB per process", f"{app:.0f} MB", app <= 300)
        )
        report.targets.append(Target("worker RSS under portal load", "≤ 300 MB", f"{wrk:.0f} MB", wrk <= 300))
    finally:
        if args.keep:
            (work / "env.json").write_text(json.dumps(env))
            progress(f"kept: database {name}, {work} (env.json has the environment)")
        else:
            pg_database(admin, name, drop=True)
            redis_database(BENCH_REDIS, drop=True)
            shutil.rmtree(work, ignore_errors=True)
    report.seconds = time.time() - began
    report.print()
    report.write_json(args.json)


if __name__ == "__main__":
    main()
