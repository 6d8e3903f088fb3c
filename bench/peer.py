"""The peer benchmark's plumbing: django-ca in its own virtualenv, driven by bench/django_ca_driver.py.

The virtualenv (var/bench-django-ca-venv) is made on first use with the
interpreter certdesk runs on, and django-ca with its own Django comes from
PyPI through pip. django-ca 3.2 is the newest release for Python 3.11 (it
pins Django 5.2 there); later runs reuse the virtualenv while its stamp file
names the same requirements.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import ROOT, run_processes

VENV = ROOT / "var" / "bench-django-ca-venv"
REQUIREMENTS = ["django-ca==3.2.0", "Django==5.2.19", "psycopg[binary]==3.3.9"]
DRIVER = ROOT / "bench" / "django_ca_driver.py"


def ensure_venv(progress: Any) -> Path:
    """The peer's python, installing django-ca into a fresh virtualenv when needed."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".bench-requirements"
    wanted = "\n".join(REQUIREMENTS)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    progress(f"creating {VENV.relative_to(ROOT)} and installing {', '.join(REQUIREMENTS)} from PyPI")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *REQUIREMENTS],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    stamp.write_text(wanted)
    return python


def _args(python: Path, mode: str, kw: dict[str, Any]) -> list[str]:
    args = [str(python), str(DRIVER), mode]
    for key, value in kw.items():
        if value is True:
            args.append(f"--{key.replace('_', '-')}")
        elif value not in (False, None):
            args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def _env() -> dict[str, str]:
    # The peer must not see certdesk's settings or virtualenv.
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "VIRTUAL_ENV")}
    env["PYTHONWARNINGS"] = "ignore"
    return env


def driver(python: Path, mode: str, **kw: Any) -> dict[str, Any]:
    """Run one driver process; its last stdout line is JSON."""
    proc = subprocess.run(_args(python, mode, kw), capture_output=True, env=_env(), cwd=ROOT, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"django-ca driver {mode} failed:\n{proc.stderr.decode()[-3000:]}")
    return dict(json.loads(proc.stdout.decode().strip().splitlines()[-1]))


def rate(python: Path, mode: str, *, n: int, seconds: float, **kw: Any) -> dict[str, float]:
    """n driver processes released together (the barrier of bench.common): operations/s, CPU ms, peak RSS."""
    commands = [_args(python, mode, {**kw, "seconds": seconds})] * n
    results = run_processes(commands, env=_env(), what=f"django-ca driver {mode}")
    count = sum(r["count"] for r in results)
    return {
        "rate": count / max(r["seconds"] for r in results),
        "cpu_ms": sum(r["cpu"] for r in results) / max(count, 1) * 1000,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
    }
