"""The shipped systemd units and the one-machine rehearsal: background work yields to requests."""

from __future__ import annotations

import configparser
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _service(name: str) -> configparser.SectionProxy:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment, method-assign]  # systemd keys are case-sensitive
    unit.read(DEPLOY / "systemd" / name)
    return unit["Service"]


def test_a_worker_takes_only_the_cpu_the_app_server_leaves() -> None:
    worker, web = _service("certdesk-worker@.service"), _service("certdesk-web.service")
    assert int(worker["Nice"]) > int(web.get("Nice", "0"))
    assert int(worker["CPUWeight"]) < int(web.get("CPUWeight", "100"))


def test_the_rehearsal_and_the_benchmark_start_the_worker_as_the_unit_does() -> None:
    nice = _service("certdesk-worker@.service")["Nice"]
    assert f'nice -n {nice} "$PY" manage.py db_worker' in (DEPLOY / "run-prod-like.sh").read_text()
    common = (DEPLOY.parent / "bench" / "common.py").read_text()
    assert f"WORKER_NICE = {nice}\n" in common
