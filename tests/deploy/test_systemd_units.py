"""The shipped systemd units and the one-machine rehearsal: background work yields to requests, and the
OCSP service runs where nginx sends OCSP requests."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

from gunicorn.util import load_class

from bench.common import WORKER_NICE

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
    nice = int(_service("certdesk-worker@.service")["Nice"])
    assert nice == WORKER_NICE
    rehearsal = (DEPLOY / "run-prod-like.sh").read_text()
    assert 'nice -n "$WORKER_NICE" "$PY" manage.py db_worker' in rehearsal
    # The rehearsal's own line that reads the value from the unit, run as the script runs it.
    read = next(line for line in rehearsal.splitlines() if line.startswith("WORKER_NICE="))
    shell = subprocess.run(
        ["bash", "-c", f'{read}; echo "$WORKER_NICE"'], cwd=DEPLOY.parent, capture_output=True, text=True, check=True
    )
    assert shell.stdout.strip() == str(nice)


def _environment(name: str) -> dict[str, str]:
    """A unit's Environment= lines (configparser would keep only the last of the repeated key)."""
    text = (DEPLOY / "systemd" / name).read_text()
    pairs = [line.removeprefix("Environment=").split("=", 1) for line in text.splitlines()]
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2 and not pair[0].startswith(("#", "["))}


def test_the_ocsp_service_runs_the_asgi_app_where_nginx_sends_ocsp() -> None:
    env = _environment("certdesk-ocsp.service")
    assert env["GUNICORN_APP"] == "config.ocsp:application"
    assert env["GUNICORN_WORKER_CLASS"] == "uvicorn_worker.UvicornWorker"
    assert env["GUNICORN_ACCESS_LOG"] == ""
    nginx = (DEPLOY / "nginx" / "certdesk.conf").read_text()
    upstream = nginx.split("upstream certdesk_ocsp {", 1)[1].split("}", 1)[0]
    assert f"server {env['GUNICORN_BIND']} " in upstream
    location = nginx.split("location /pki/ocsp/ {", 1)[1].split("}", 1)[0]
    assert "proxy_pass http://certdesk_ocsp;" in location
    rehearsal = (DEPLOY / "run-prod-like.sh").read_text()
    for name in ("GUNICORN_APP", "GUNICORN_WORKER_CLASS", "GUNICORN_PROC_NAME"):
        assert f"{name}={env[name]}" in rehearsal
    assert 'GUNICORN_ACCESS_LOG=""' in rehearsal


def test_gunicorn_loads_the_ocsp_service_with_the_units_settings(tmp_path: Path) -> None:
    env = _environment("certdesk-ocsp.service")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "gunicorn"), "--config", "deploy/gunicorn.conf.py", "--print-config"],
        cwd=DEPLOY.parent,
        env={
            **os.environ,
            **{k: v for k, v in env.items() if k.startswith("GUNICORN_") and k != "GUNICORN_BIND"},
            "DJANGO_SETTINGS_MODULE": "config.settings_test",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    config = dict(
        (name.strip(), value.strip()) for name, _, value in (line.partition("=") for line in result.stdout.splitlines())
    )
    assert config["wsgi_app"] == "config.ocsp:application"
    assert config["worker_class"] == "uvicorn_worker.UvicornWorker"
    assert config["proc_name"] == "certdesk-ocsp"
    assert config["accesslog"] == "None"  # an empty GUNICORN_ACCESS_LOG: no access log at all
    assert load_class(config["worker_class"]).__name__ == "UvicornWorker"
