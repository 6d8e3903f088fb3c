"""What the benchmarks share: child processes, databases, gunicorn, an HTTP load driver, memory, tables.

Every benchmark in `bench/` is a script that prints one or more tables with its
baseline measured in the same run. With `--json FILE` it also writes its
tables and target checks for `bench/run.py`, which writes docs/benchmarks.md.
Nothing here imports Django: the parent processes stay light, and each
measured process configures Django itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/postgres"
CORES = os.cpu_count() or 1


# --------------------------------------------------------------------------- processes


def progress_clock() -> Callable[[str], None]:
    """A `progress(text)` that prints to stderr with the seconds since it was made."""
    began = time.time()

    def progress(text: str) -> None:
        print(f"[{time.time() - began:6.1f}s] {text}", file=sys.stderr, flush=True)

    return progress


def run_children(
    script: str, kind: str, *, n: int = 1, timeout: float = 600, env: dict[str, str] | None = None, **kw: Any
) -> list[dict[str, Any]]:
    """Run `script --child KIND --key value…` in `n` processes at once; each prints one JSON line last.

    A child that calls `barrier()` prints "ready" and waits; when all n are ready the parent
    says "go" to every one, so their timed loops run together and no one waits on a guess.
    """
    args = [PYTHON, script, "--child", kind]
    for key, value in kw.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return run_processes([args] * n, env=full_env, timeout=timeout, what=f"bench child {kind}")


def run_processes(
    commands: Sequence[Sequence[str]], *, env: dict[str, str], timeout: float = 600, what: str = "bench child"
) -> list[dict[str, Any]]:
    """Start the commands together, release them through the barrier together, read each one's last JSON line."""
    procs = [
        subprocess.Popen(
            list(args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**env, "BENCH_BARRIER": "1" if len(commands) > 1 else "", "BENCH_CHILD_INDEX": str(index)},
            cwd=ROOT,
        )
        for index, args in enumerate(commands)
    ]
    out = []
    try:
        if len(procs) > 1:
            deadline = time.time() + timeout
            for proc in procs:
                assert proc.stdout is not None
                while proc.stdout.readline().strip() != b"ready":
                    if proc.poll() is not None or time.time() > deadline:
                        break
            # "go" carries a start time a moment ahead, so children that work in shared time slots agree on them.
            go = f"go {time.time() + 0.2:.6f}\n".encode()
            for proc in procs:
                assert proc.stdin is not None
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.write(go)
                    proc.stdin.flush()
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=timeout)
            if proc.returncode != 0:
                raise SystemExit(f"{what} failed:\n{stderr.decode()[-3000:]}")
            out.append(json.loads(stdout.decode().strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return out


def child_main(children: dict[str, Callable[[Any], dict[str, Any]]], args: Any) -> None:
    """In a child: run it, add its own peak RSS, print the JSON line the parent reads."""
    result = children[args.child](args)
    result.setdefault("peak_rss_mb", peak_rss_self_mb())
    print(json.dumps(result))


def barrier() -> float:
    """In a child started with others: say "ready", wait for the parent's "go" (see `run_processes`).
    Returns the common start time (`time.time()`) that "go" carries; alone, now."""
    if os.environ.get("BENCH_BARRIER"):
        print("ready", flush=True)
        words = sys.stdin.readline().split()
        if len(words) == 2:
            return float(words[1])
    return time.time()


def child_index() -> int:
    """This child's place (0, 1, …) among the processes `run_processes` started together."""
    return int(os.environ.get("BENCH_CHILD_INDEX", "0"))


def peak_rss_self_mb() -> float:
    """This process's peak resident set size (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_pids(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cpu_seconds(pids: Sequence[int]) -> float:
    """user + system CPU seconds of these processes so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, proc: subprocess.Popen[bytes], *, what: str, log: IO[bytes] | None = None, timeout: float = 60
) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"{what} did not start: {tail(log)}") from None
            time.sleep(0.2)


def tail(log: IO[bytes] | None, size: int = 3000) -> str:
    """The end of a log file a child writes to."""
    if log is None:
        return ""
    log.seek(0)
    return log.read().decode(errors="replace")[-size:]


def stop(proc: subprocess.Popen[bytes], *, timeout: float = 20) -> None:
    """SIGTERM the process group we started (start_new_session=True), then wait; SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# --------------------------------------------------------------------------- memory


class MemorySampler:
    """Peak RSS of process trees (a gunicorn master and its workers, a db_worker), sampled with psutil.

    Each tree is named by a role ("app server", "worker"). Every `interval` the
    sampler reads the RSS of the root and of all its descendants; at the end the
    kernel's own high-water mark (VmHWM) of each process still alive is folded
    in, so a short peak between two samples is not missed.
    """

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.roots: dict[str, int] = {}
        self.peaks: dict[str, dict[int, float]] = {}
        self.is_root: dict[int, bool] = {}
        self.seen: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, role: str, pid: int) -> None:
        self.roots[role] = pid
        self.peaks.setdefault(role, {})

    def _pids(self, root: int) -> list[int]:
        import psutil

        try:
            # Direct children only: gunicorn's workers. Grandchildren are short-lived helpers
            # (WeasyPrint's ctypes.util.find_library runs `ld` once per worker when it is imported).
            return [root, *(child.pid for child in psutil.Process(root).children())]
        except psutil.Error:
            return []

    def sample(self) -> None:
        import psutil

        for role, root in self.roots.items():
            for pid in self._pids(root):
                try:
                    rss = psutil.Process(pid).memory_info().rss / 2**20
                except psutil.Error:
                    continue
                hwm = _vm_hwm_mb(pid)
                peaks = self.peaks[role]
                peaks[pid] = max(peaks.get(pid, 0.0), rss, hwm)
                self.is_root[pid] = pid == root
                self.seen[pid] = self.seen.get(pid, 0) + 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> MemorySampler:
        self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sample()
        self._stop.set()
        if self._thread:
            self._thread.join()

    def report(self) -> dict[str, dict[str, float]]:
        """Per role: peak RSS of the root process, of the largest other process, and how many there were."""
        out = {}
        for role, peaks in self.peaks.items():
            root = [mb for pid, mb in peaks.items() if self.is_root.get(pid)]
            # A child seen in fewer than three samples was a fork on its way to exec another program.
            others = [mb for pid, mb in peaks.items() if not self.is_root.get(pid) and self.seen.get(pid, 0) >= 3]
            out[role] = {
                "root_mb": max(root, default=0.0),
                "largest_child_mb": max(others, default=0.0),
                "children": float(len(others)),
                "largest_mb": max([*root, *others], default=0.0),
            }
        return out


def _vm_hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def memory_note(report: dict[str, dict[str, float]]) -> str:
    """'app server: master 27 MB, largest of 2 workers 135 MB; worker: 118 MB' for a table row."""
    parts = []
    for role, r in report.items():
        if role == "app server" and r["children"]:
            parts.append(
                f"{role}: master {r['root_mb']:.0f} MB, largest of {r['children']:.0f} workers"
                f" {r['largest_child_mb']:.0f} MB"
            )
        else:
            parts.append(f"{role}: {r['largest_mb']:.0f} MB")
    return "; ".join(parts)


# --------------------------------------------------------------------------- PostgreSQL


def pg_admin_url() -> str | None:
    """A PostgreSQL URL that answers (DATABASE_URL when it names one, else the local default), or None."""
    url = os.environ.get("DATABASE_URL", DEFAULT_PG)
    if not url.startswith("postgres"):
        url = DEFAULT_PG
    try:
        import psycopg

        with psycopg.connect(url.replace("postgres://", "postgresql://"), connect_timeout=2):
            return url
    except Exception:
        return None


def pg_database(admin_url: str, name: str, *, drop: bool = False) -> str:
    """(Re)create database `name` (or only drop it) and return its URL."""
    import psycopg

    with psycopg.connect(admin_url.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop:
            conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    return f"{base}/{name}"


def redis_database(url: str, *, drop: bool = False) -> str | None:
    """Empty the Redis database at `url` (a benchmark's own) and return the URL; None when Redis does not
    answer or the `redis` package (deploy/requirements-prod.txt) is missing."""
    try:
        import redis
    except ImportError:
        return None
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).flushdb()
    except redis.RedisError:
        return None
    return None if drop else url


# --------------------------------------------------------------------------- gunicorn


@contextlib.contextmanager
def gunicorn(
    app: str,
    *,
    env: dict[str, str],
    workers: int,
    threads: int,
    config: Path | None = None,
    extra: Sequence[str] = (),
    worker_class: str | None = None,
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Start gunicorn on a free loopback port, wait until it accepts connections, stop it afterwards.

    `config` is a gunicorn config file (deploy/gunicorn.conf.py); the command
    line given here (bind, workers, threads) overrides it. `worker_class`
    (e.g. uvicorn's, for an ASGI app) replaces the threaded or sync worker.
    """
    port = free_port()
    args = [str(Path(PYTHON).parent / "gunicorn"), "--chdir", str(ROOT)]
    if config is not None:
        args += ["--config", str(config)]
    args += [
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class or ("gthread" if threads else "sync"),  # --threads 0: sync workers, one request per connection
        "--threads",
        str(max(threads, 1)),
        "--keep-alive",
        "30",
        "--backlog",
        "512",
        "--log-level",
        "error",
        "--access-logfile",
        "/dev/null",
        *extra,
        app,
    ]
    with tempfile.TemporaryFile() as log:  # not a pipe: a full pipe would stall the server
        server = subprocess.Popen(
            args,
            env={**os.environ, "PYTHONWARNINGS": "ignore", **env},
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
            cwd=ROOT,
        )
        try:
            wait_for_port(port, server, what="gunicorn", log=log)
            # Workers accept once they have imported the app; give every worker the time to be ready.
            deadline = time.time() + 30
            while len(child_pids(server.pid)) < workers and time.time() < deadline:
                time.sleep(0.1)
            yield port, server
        finally:
            stop(server)


def unit_nice(unit: str) -> int:
    """The `Nice=` of one of deploy/systemd's units (0 when it sets none)."""
    for line in (ROOT / "deploy" / "systemd" / unit).read_text().splitlines():
        if line.startswith("Nice="):
            return int(line.removeprefix("Nice="))
    return 0


# As deployed: a worker yields the CPU to the app server's requests.
WORKER_NICE = unit_nice("certdesk-worker@.service")


@contextlib.contextmanager
def db_worker(env: dict[str, str], *, settings_module: str = "config.settings") -> Iterator[subprocess.Popen[bytes]]:
    """`manage.py db_worker` (django-tasks-db) on the benchmark database at the deployed niceness, stopped afterwards."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            ["nice", "-n", str(WORKER_NICE), PYTHON, "manage.py", "db_worker", "--interval", "0.2"],
            env={**os.environ, "PYTHONWARNINGS": "ignore", "DJANGO_SETTINGS_MODULE": settings_module, **env},
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
            cwd=ROOT,
        )
        try:
            time.sleep(1.0)
            if proc.poll() is not None:
                raise SystemExit(f"db_worker did not start: {tail(log)}")
            yield proc
        finally:
            stop(proc)


# --------------------------------------------------------------------------- HTTP load


def raw_request(
    method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None, host: str = "127.0.0.1"
) -> bytes:
    """An HTTP/1.1 request on a keep-alive connection, as bytes."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class LoadResult:
    clients: int
    rate: float
    p50: float
    p99: float
    n: int
    failures: int
    server_us: float
    client_us: float
    think: float = 0.0
    by_label: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


async def _load(
    port: int,
    scripts: list[list[tuple[str, bytes]]],
    *,
    seconds: float,
    warmup: float,
    cpu_of: Sequence[int],
    ok: Callable[[bytes, bytes], bool],
    think: float,
    seed: int,
) -> LoadResult:
    import random

    clients = len(scripts)
    latencies: dict[str, list[float]] = {}
    failures = 0
    counting = False
    rng = random.Random(seed)

    async def client(index: int, stop_at: float) -> None:
        nonlocal failures
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        script = scripts[index]
        i = rng.randrange(len(script))
        while time.perf_counter() < stop_at:
            if think:
                # Uniform 0.5–1.5 × think between a user's clicks (a person reads the page).
                await asyncio.sleep(think * (0.5 + rng.random()))
                if time.perf_counter() >= stop_at:
                    break
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            label, payload = script[i % len(script)]
            i += 1
            t = time.perf_counter()
            writer.write(payload)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                failures += counting
                writer.close()
                reader = writer = None
                continue
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
                latencies.setdefault(label, []).append(time.perf_counter() - t)
                if not ok(head, body):
                    failures += 1
            if close:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    if warmup:
        await asyncio.gather(*(client(i, time.perf_counter() + warmup) for i in range(clients)))
    counting = True
    server_cpu = cpu_seconds(cpu_of)
    client_cpu = time.process_time()
    t0 = time.perf_counter()
    await asyncio.gather(*(client(i, t0 + seconds) for i in range(clients)))
    elapsed = time.perf_counter() - t0
    server_cpu = cpu_seconds(cpu_of) - server_cpu
    client_cpu = time.process_time() - client_cpu
    every = sorted(x for values in latencies.values() for x in values)
    n = len(every)
    by_label = {}
    for label, values in latencies.items():
        values.sort()
        by_label[label] = {
            "rate": len(values) / elapsed,
            "p50": _percentile(values, 0.5) * 1000,
            "p99": _percentile(values, 0.99) * 1000,
            "n": float(len(values)),
        }
    return LoadResult(
        clients=clients,
        rate=n / elapsed,
        p50=(statistics.median(every) if every else float("nan")) * 1000,
        p99=_percentile(every, 0.99) * 1000,
        n=n,
        failures=failures,
        server_us=server_cpu / max(1, n) * 1e6,
        client_us=client_cpu / max(1, n) * 1e6,
        think=think,
        by_label=by_label,
    )


def http_load(
    port: int,
    scripts: list[list[tuple[str, bytes]]],
    *,
    seconds: float,
    warmup: float = 1.5,
    cpu_of: Sequence[int] = (),
    ok: Callable[[bytes, bytes], bool] | None = None,
    think: float = 0.0,
    seed: int = 1,
) -> LoadResult:
    """Closed-loop clients on keep-alive connections, one per script; each cycles through its
    (label, raw request) list. `think` > 0 makes them users who pause between clicks.

    Bounded: every client stops at `warmup + seconds`; loopback only.
    """

    def default_ok(head: bytes, body: bytes) -> bool:
        return head.startswith(b"HTTP/1.1 200")

    return asyncio.run(
        _load(
            port,
            scripts,
            seconds=seconds,
            warmup=warmup,
            cpu_of=cpu_of,
            ok=ok or default_ok,
            think=think,
            seed=seed,
        )
    )


# --------------------------------------------------------------------------- results and tables


@dataclass
class Table:
    """One printed table: a title, column names, rows of strings, and notes under it."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def text(self) -> str:
        widths = [
            max(len(c), *(len(r[i]) for r in self.rows)) if self.rows else len(c) for i, c in enumerate(self.columns)
        ]
        line = "  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True))
        out = [self.title, "", line, "-" * len(line)]
        for row in self.rows:
            out.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        out += ["", *self.notes] if self.notes else []
        return "\n".join(out)

    def markdown(self) -> str:
        def cell(text: str) -> str:
            return text.replace("|", "\\|")

        out = [f"**{self.title}**", "", "| " + " | ".join(self.columns) + " |"]
        out.append("|" + "|".join("---" for _ in self.columns) + "|")
        for row in self.rows:
            out.append("| " + " | ".join(cell(c) for c in row) + " |")
        if self.notes:
            out += ["", *(f"{note}  " if i < len(self.notes) - 1 else note for i, note in enumerate(self.notes))]
        return "\n".join(out)


@dataclass
class Target:
    """A goal from issue #10 and what this run measured against it."""

    name: str
    goal: str
    measured: str
    met: bool | None  # None: not measured in this run

    @property
    def verdict(self) -> str:
        return {True: "met", False: "**missed**", None: "not measured"}[self.met]


@dataclass
class Report:
    """What one benchmark script hands to `bench/run.py`."""

    name: str
    command: str
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    seconds: float = 0.0
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def print(self) -> None:
        load = os.getloadavg()
        self.load_average = (load[0], load[1], load[2])
        print(
            f"\n{self.name} ({CORES} cores, {self.seconds:.0f} s; load average at the end "
            f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}: other work on the machine lowers every rate)\n"
        )
        for table in self.tables:
            print(table.text())
            print()
        if self.targets:
            t = Table("targets", ["target", "goal", "measured", "verdict"])
            for target in self.targets:
                t.add(target.name, target.goal, target.measured, target.verdict.replace("*", ""))
            print(t.text())
            print()

    def skip(self, reason: str, json_path: str | None) -> None:
        """Report that this benchmark could not run here, and why (printed, and in the JSON for run.py)."""
        self.tables.append(Table(f"{self.name} skipped: {reason}", ["-"]))
        self.print()
        self.write_json(json_path)

    def write_json(self, path: str | None) -> None:
        if not path:
            return
        Path(path).write_text(
            json.dumps(
                {
                    "name": self.name,
                    "command": self.command,
                    "seconds": self.seconds,
                    "load_average": self.load_average,
                    "tables": [asdict(t) for t in self.tables],
                    "targets": [asdict(t) for t in self.targets],
                },
                ensure_ascii=False,
                indent=1,
            )
        )


def report_from_json(path: Path) -> Report:
    data = json.loads(path.read_text())
    return Report(
        name=data["name"],
        command=data["command"],
        tables=[Table(**t) for t in data["tables"]],
        targets=[Target(**t) for t in data["targets"]],
        seconds=data["seconds"],
        load_average=tuple(data["load_average"]),
    )


def fmt_rate(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}"


def ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"
