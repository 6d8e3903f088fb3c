"""`make bench`: run every benchmark in bench/ and write docs/benchmarks.md.

    .venv/bin/python bench/run.py [--only pki,crl,portal,documents] [--quick] [--out docs/benchmarks.md]

Each benchmark runs as its own process (its tables stream to the terminal)
and hands its tables and target checks over as JSON; this script writes them
all, with a summary against the targets of issue #10, into one Markdown file
that it replaces completely. Budget: under 15 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import CORES, PYTHON, ROOT, Report, report_from_json

# name → (script, normal arguments, --quick arguments)
BENCHES: dict[str, tuple[str, list[str], list[str]]] = {
    "pki": ("bench/pki.py", [], ["--seconds-each", "1.5"]),
    "crl": ("bench/crl.py", [], ["--sizes", "10000,100000", "--timeout", "60"]),
    "portal": ("bench/portal.py", [], ["--orders", "20000", "--seconds", "3"]),
    "documents": ("bench/documents.py", [], ["--rounds", "3"]),
}


# Where the time goes: found by profiling (pyinstrument, cProfile) while building these benchmarks
# (issue #10, November 2026). Not measured by this run: re-profile after the code changes.
FINDINGS = """\
## Where the time goes (profiled for issues #3 and #10; changes made in the second and third sessions)

- **Issuance**: pkilint is most of `certificate_issue()`'s CPU. Made cheaper: a candidate index on
  pkilint's validator containers (same validators on the same nodes, 26 % fewer instructions per lint,
  callgrind) and remembered decodes of the small values inside a certificate (extension values, name
  attributes: the same bytes and schema give the same value; 3.1 -> 2.2-2.5 ms a lint). The pipeline
  around it: Boulder's order with two commits a certificate (lint, one INSERT records the linted TBS
  and findings, sign, store), `IssuedCertificate` down from 17 to 6 indexes so the store UPDATE is a
  HOT update on PostgreSQL, the hot-path writes and the key check as plain SQL from the model, the
  issuing CA looked up once per process and 5 s. Fourth session: on PostgreSQL a certificate costs two
  statements, not six — the key check runs inside the record's INSERT and the store's UPDATE feeds the
  OCSP response's INSERT in one statement (no BEGIN/COMMIT round trips); pkilint checks each URL once
  (the `validators` package built a signature with `inspect` on every failed inner check). What
  remains besides lint: CSR check, the OCSP pre-sign, two durable commits (~0.3 ms of server and
  kernel CPU each, measured alone) and, with two processes on two cores, the context switches of every
  round trip: PostgreSQL costs ~1.5–2 ms a certificate more than SQLite in the same run. Fifth session:
  the two statements are prepared (server-side binding, parsed and planned once per connection; the
  server's CPU per certificate 1.3 -> 0.7 ms), and the ratio to lint + sign is measured in alternating
  half-second slots in the same processes: this VM's speed changes up to 2x within seconds, and limits
  measured apart from the pipeline had made the same code read anywhere from 37 % to 86 %. Seventh
  session: the pipeline table shows the PostgreSQL backends' CPU (0.6–0.8 ms a certificate beside the
  issuing process's ~5 ms; lint + sign alone ~2.6 ms), which puts PostgreSQL at 48–50 % of lint + sign
  on a machine that lints and signs 780–870 certificates/s on two processes (the fifth session's, slower,
  gave 55 %). No gain from: committing the store asynchronously, `gc.freeze()`, pinning each process
  and its backend to one core, libpq's `exec_prepared` past psycopg's cursor. Without the OCSP pre-sign
  issuance would reach ~52 %; it stays, as the issue's issuance order ends with publishing. Eighth
  session: pkilint's node tree is a reference cycle (each node points at its parent and back), so every
  lint left ~650 objects for the cyclic garbage collector, and building the tree started a collection
  in nearly every issuance (GC 0.8–1.1 ms of a certificate's 11–13 ms of CPU on that session's slower
  machine); lint now unlinks the tree when its findings are taken and runs with the collector off, and
  the pipeline makes no collection at all. The PostgreSQL statements reuse one psycopg cursor per
  connection (a new cursor looked up every parameter's adapter again). Interleaved blocks in one
  process: -0.3, -0.3 and -0.15–0.3 ms of client CPU a certificate respectively. SoftHSM: processes
  starting together serialise C_Initialize and login (a flock on the module file), where SoftHSM
  rewrites its token files. Ninth session: the same lint costs 20–40 % more CPU inside the pipeline
  than in the lint + sign loop, and the ratio table now shows it in every run. The cause is the host,
  not the code: this Firecracker guest halts an idle vCPU at once, and work right after a block runs
  slower (a lint + sign loop with two 0.6 ms sleeps a certificate: lint 3.0 -> 4.0 ms; with busy
  waits instead: 3.0 ms). PostgreSQL's two round trips block twice a certificate; on one commit the
  ratio read 46 % and, an hour later, 38 %. Certificate records (~2.3 KB) no longer cross
  PostgreSQL's TOAST threshold (migration pki.0003): WAL 16–18 -> 13 KB a certificate. Tenth
  session: the record now comes before the lint (the issue's order: record, lint, sign), and on
  PostgreSQL the record's statement is sent, lint runs, and its answer is read afterwards (libpq's
  asynchronous calls): the issuing process blocks once a certificate, not twice (ru_nvcsw 2.0 -> 1.0).
  One process, alternating runs of 600 certificates: 126–130 -> 143–177 certificates/s. The store
  statement goes the same way (~0.1 ms less client CPU than psycopg's cursor, paired blocks of 25).
  The lint's extra CPU inside the PostgreSQL pipeline fell from +32–38 % to +9–20 %. But with the
  processes and PostgreSQL sharing two busy cores the overlap gains nothing: both orders alternating
  in the same processes, two processes 1.6–5 % slower, four 4–5 % faster (the backend now takes a core
  from a client that is linting, not from one that waits); the ratio stayed at 43–50 %.
- **OCSP**: answering from the pre-signed store costs ~15 µs in `ocsp_respond()`; Django's request
  cycle around it (URL resolution, 14 middlewares) cost ~290 µs in-process. A WSGI fast path past
  Django (~50–110 µs in-process) still left gunicorn's threaded worker at 0.55–1 ms of CPU a response:
  py-spy showed its HTTP handling in Python (request parsing, the keep-alive poller, the thread
  hand-off, the access log's lock) as most of it. Sixth session: OCSP is its own service
  (`config/ocsp.py`, an ASGI app under gunicorn's uvicorn worker: HTTP parsed in C on an event loop,
  the answer in a small thread pool): ~0.2–0.3 ms of server CPU a response.
- **CRL**: cryptography's builder needs one Python object per entry (and `add_revoked_certificate()`
  copies the list on each call). `certdesk/pki/crl.py` encodes the entries as DER while the rows stream
  in (a binary server-side cursor on PostgreSQL) and signs the digest once.
- **Portal pages**: `get_status_display()` / `get_business_type_display()` hash every lazy choice label
  (Django's `make_hashable(field.flatchoices)`), so each call translated every label; list pages now
  use a cached label filter. The sealed ID numbers were decrypted for every row of lists that do not
  show them; the customer order list is paginated; staff permission checks are cached per request.
  Fifth session: the benchmark runs as deploy/certdesk.env.example does (sessions read from Redis: one
  query fewer a page) and the task worker at the unit's `Nice=10`. Still, on a machine where a page
  costs 15–20 ms of CPU (10.5 ms in the third session) the paced p99 is several hundred ms with the
  worker busy and ~160 ms without it: the pages' CPU (ORM query compilation, template rendering) is the
  next thing to cut.
- **Uploads**: re-encoding a PNG at zlib's default level dominated PNG validation (~30× the decode);
  level 3 now.
"""


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{CORES} cores ({model or platform.machine()}), {memory:.0f} GiB"


def _versions() -> str:
    from importlib.metadata import version

    parts = [f"Python {platform.python_version()}"]
    for package in ("Django", "cryptography", "pkilint", "gunicorn", "psycopg"):
        try:
            parts.append(f"{package} {version(package)}")
        except Exception:  # noqa: S112 - a missing package is simply not listed
            continue
    try:
        import psycopg

        from bench.common import pg_admin_url

        url = pg_admin_url()
        if url:
            with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
                row = conn.execute("SHOW server_version").fetchone()
                parts.append(f"PostgreSQL {row[0] if row else '?'}")
    except Exception:  # noqa: S110 - the version line is informative only
        pass
    return ", ".join(parts)


def _markdown(
    reports: list[Report],
    failures: dict[str, str],
    *,
    began: float,
    load_before: tuple[float, ...],
    quick: bool,
    command: str,
) -> str:
    load_after = os.getloadavg()
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = " with uncommitted changes" if _git("status", "--porcelain", "--untracked-files=no") else ""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# Benchmarks",
        "",
        "<!-- Generated by `make bench` (bench/run.py): do not edit by hand; run it again. -->",
        "",
        f"Made by `{command}` on {now}, commit {commit or '?'}{dirty}, in {time.time() - began:.0f} s.  ",
        f"Machine: {_machine()}; {_versions()}.  ",
        f"Load average before {load_before[0]:.1f}, after {load_after[0]:.1f} / {load_after[1]:.1f} /"
        f" {load_after[2]:.1f} (1/5/15 min): anything else running on the machine lowers every rate below.",
    ]
    if quick:
        out += ["", "**Quick run (`--quick`): shorter measurements and smaller data; not the numbers to quote.**"]
    out += [
        "",
        "## Targets (issue #10)",
        "",
        "| target | goal | measured | verdict | benchmark |",
        "|---|---|---|---|---|",
    ]
    for report in reports:
        for t in report.targets:
            measured = t.measured.replace("|", "\\|")
            out.append(f"| {t.name} | {t.goal} | {measured} | {t.verdict} | {report.name.split('(')[-1].rstrip(')')} |")
    for name in failures:
        out.append(f"| {name} | — | the benchmark failed (below) | **failed** | bench/{name}.py |")
    out += [
        "",
        "Every table below carries its own baseline measured in the same run, so ratios stay meaningful on a",
        "busy machine even when absolute rates drop. Peak memory is the resident set size (RSS): sampled with",
        "psutil for gunicorn's master and workers and the `manage.py db_worker`, and the kernel's high-water mark",
        "(ru_maxrss / VmHWM) for the measuring processes.",
    ]
    for report in reports:
        out += ["", f"## {report.name}", "", f"`{report.command}` — {report.seconds:.0f} s", ""]
        for table in report.tables:
            out += [table.markdown(), ""]
    for name, error in failures.items():
        out += ["", f"## bench/{name}.py failed", "", "```", error.strip()[-3000:], "```"]
    out += ["", FINDINGS.rstrip()]
    out += [
        "",
        "## How these numbers are made",
        "",
        "- `make bench` runs `bench/run.py`, which runs `bench/pki.py`, `bench/crl.py`, `bench/portal.py` and",
        "  `bench/documents.py` one after the other and rewrites this file. Each script also runs alone and prints",
        "  its tables (`.venv/bin/python bench/pki.py --help`).",
        "- Databases: temporary SQLite files and PostgreSQL databases (`certdesk_bench_*`) on",
        "  `DATABASE_URL` or `postgres://postgres@127.0.0.1:5432/postgres`, created and dropped by the benchmarks.",
        "- Load is generated on loopback only, by closed-loop asyncio clients on keep-alive connections",
        "  (`bench/common.py::http_load`), bounded in time.",
        "- The peer, django-ca, runs in its own virtualenv (`var/bench-django-ca-venv`, made on first use by",
        "  `bench/peer.py` with pip) through `bench/django_ca_driver.py`.",
    ]
    return "\n".join(out) + "\n"


def _run_teeing_stderr(command: list[str]) -> tuple[int, str]:
    """Run a benchmark; its stdout and progress (stderr) reach the terminal as they come, and the end of
    stderr is kept to show in docs/benchmarks.md if it fails."""
    proc = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    tail: list[str] = []
    for raw in proc.stderr:
        line = raw.decode(errors="replace")
        sys.stderr.write(line)
        sys.stderr.flush()
        tail.append(line)
        del tail[:-200]
    return proc.wait(), "".join(tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset of " + ", ".join(BENCHES))
    parser.add_argument("--quick", action="store_true", help="shorter runs, smaller data: to check the machinery")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    began = time.time()
    load_before = os.getloadavg()
    reports: list[Report] = []
    failures: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="certdesk-bench-") as tmp:
        for name in args.only.split(","):
            script, normal, quick = BENCHES[name]
            json_path = Path(tmp) / f"{name}.json"
            command = [PYTHON, script, *(quick if args.quick else normal), "--json", str(json_path)]
            print(f"\n=== {' '.join(command[1:-2])}", flush=True)
            t0 = time.time()
            returncode, error = _run_teeing_stderr(command)
            if returncode != 0 or not json_path.exists():
                failures[name] = error or f"exit code {returncode}"
                print(f"=== {name} FAILED after {time.time() - t0:.0f} s", flush=True)
                continue
            report = report_from_json(json_path)
            report.command = "make bench  # or: .venv/bin/python " + " ".join(command[1:-2])
            reports.append(report)
            print(f"=== {name} done in {time.time() - t0:.0f} s", flush=True)
    made_by = "make bench" + (" BENCH_ARGS=--quick" if args.quick else "")
    Path(args.out).write_text(
        _markdown(reports, failures, began=began, load_before=load_before, quick=args.quick, command=made_by)
    )
    print(f"\nwrote {Path(args.out).relative_to(ROOT)} in {time.time() - began:.0f} s\n")
    print("targets:")
    for report in reports:
        for t in report.targets:
            print(f"  {t.verdict.replace('*', ''):>12}  {t.name}: {t.measured} (goal {t.goal})")
    for name in failures:
        print(f"  {'FAILED':>12}  bench/{name}.py")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
