"""Security headers, cookie flags and Django's deployment checks with production settings."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_csp_forbids_inline_scripts_and_framing(client: Client) -> None:
    response = client.get("/")
    csp = response["Content-Security-Policy"]
    script = next(part for part in csp.split(";") if part.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_no_inline_script_in_pages(client: Client) -> None:
    page = client.get("/").content.decode()
    assert "<script>" not in page
    assert " onclick=" not in page and " onsubmit=" not in page


def _environ(**overrides: str) -> dict[str, str]:
    # The browser tests allow sync ORM calls under Playwright's loop; a server must not inherit that.
    base = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE", "SECRET_KEY")}
    return {**base, **overrides}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=_environ(**env), capture_output=True, text=True
    )


PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "CERTDESK_PRODUCTION": "true",
    "ALLOWED_HOSTS": "ca.example.cn",
    "CERTDESK_DEMO": "false",
}


def test_check_deploy_is_clean_with_production_settings() -> None:
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING", env={**PRODUCTION, "SECRET_KEY": secrets.token_urlsafe(60)}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_the_embedded_secret_key() -> None:
    result = _manage("check", env=PRODUCTION)
    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr


def test_production_cookies_are_secure() -> None:
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.SECURE_HSTS_SECONDS > 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_environ(**PRODUCTION, SECRET_KEY=secrets.token_urlsafe(60)),
        capture_output=True,
        text=True,
    )
    assert result.stdout.split() == ["True", "True", "True", "True"], result.stderr
