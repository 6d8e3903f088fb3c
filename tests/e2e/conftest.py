"""Browser tests: Playwright drives Debian's Chromium (no browser download) against
pytest-django's live server; the agent (certdesk-agent) runs in this process on the
test's own SoftHSM keys, as a person would run it on the PC next to the key.

Screenshots go to test-artifacts/screenshots/ (gitignored); with
CERTDESK_E2E_DOCS=1 the ones chosen for the README are also written, small, to
docs/screenshots/. A failing test leaves a screenshot of every page it had open.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    ViewportSize,
    WebError,
    expect,
    sync_playwright,
)

from tests.e2e.support import Agent, Shot, Staff

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests
# make between browser steps are ordinary synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CERTDESK_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
DOCS_SHOTS = ROOT / "docs" / "screenshots"
WRITE_DOCS = os.environ.get("CERTDESK_E2E_DOCS", "") == "1"
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
TIMEOUT_MS = 15_000

expect.set_options(timeout=TIMEOUT_MS)
_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make system-deps` (Debian package chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _media_in_tmp(settings: Any, tmp_path: Path) -> None:
    """Uploads of the test go to its own folder, not the demo's var/media."""
    settings.MEDIA_ROOT = str(tmp_path / "media")


# Chromium asks for /favicon.ico on its own; the portal has none.
_IGNORED_CONSOLE = re.compile(r"favicon")


@dataclass
class _Opened:
    context: BrowserContext
    page: Page
    errors: list[str]


@pytest.fixture
def open_page(browser: Browser, live_server: Any, request: pytest.FixtureRequest) -> Iterator[Callable[[], Page]]:
    """A new page in a browser context of its own (own cookies): one per person."""
    opened: list[_Opened] = []

    def open_() -> Page:
        context = browser.new_context(locale="zh-CN", viewport=VIEWPORT, base_url=live_server.url)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        errors: list[str] = []

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error" and not _IGNORED_CONSOLE.search(str(message.location.get("url", ""))):
                errors.append(f"{message.page.url if message.page else '?'}: {message.text}")

        def on_error(error: WebError) -> None:
            errors.append(f"{error.page.url if error.page else '?'}: {error.error}")

        # A script error on any page a person uses fails the test: an uncaught exception, or
        # one a library caught and logged (such as htmx refused an eval by the CSP).
        context.on("weberror", on_error)
        context.on("console", on_console)
        opened.append(_Opened(context, page, errors))
        return page

    yield open_
    for stale in ARTIFACTS.glob(f"FAILED-{request.node.name}-*.png"):
        stale.unlink()
    if request.node.stash.get(_FAILED, False):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for index, item in enumerate(opened):
            for number, page in enumerate(item.context.pages):
                name = f"FAILED-{request.node.name}-{index}-{number}.png"
                try:
                    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
                except Exception:  # noqa: S112 - best effort: the page may be gone
                    continue
    script_errors = [error for item in opened for error in item.errors]
    for item in opened:
        item.context.close()
    assert not script_errors, f"script errors in the browser: {script_errors}"


@pytest.fixture
def shot() -> Shot:
    """shot(page, "name") saves a full-page screenshot as a test artefact; docs=True also
    writes a small copy for the README when CERTDESK_E2E_DOCS=1."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str, *, docs: bool = False) -> None:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        if docs and WRITE_DOCS:
            _docs_screenshot(page, name)

    return take


def _docs_screenshot(page: Page, name: str) -> None:
    """The visible part of the page, palette-quantised: a few dozen KB for the README."""
    from PIL import Image

    DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("() => window.scrollTo(0, 0)")
    image = Image.open(io.BytesIO(page.screenshot(full_page=False))).convert("RGB")
    image = image.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    image.save(DOCS_SHOTS / f"{name.split('-', 2)[-1]}.png", optimize=True)  # new-04-info-error → info-error.png


# ---- the CA, the catalogue, the staff ------------------------------------------------------------


@pytest.fixture
def ca(file_ca: Any) -> Any:
    """The CA initialised, keys in encrypted files under tmp_path (tests/conftest.py)."""
    return file_ca


@pytest.fixture
def catalog(transactional_db: None) -> None:
    from certdesk.catalog.services import catalog_load_demo

    catalog_load_demo()


STAFF_PASSWORD = "Staff-Pass-2026-x"


@pytest.fixture
def staff(make_staff: Callable[[str, str], Any]) -> Callable[[str], Staff]:
    """staff("reviewer" | "issuer" | "support"): a staff member of that role."""
    from certdesk.accounts.roles import ROLE_ISSUER, ROLE_REVIEWER, ROLE_SUPPORT

    roles = {
        "reviewer": ("13900139001", ROLE_REVIEWER),
        "issuer": ("13900139002", ROLE_ISSUER),
        "support": ("13900139003", ROLE_SUPPORT),
    }

    made: dict[str, Staff] = {}

    def make(role: str) -> Staff:
        if role not in made:
            mobile, group = roles[role]
            made[role] = Staff(mobile=mobile, password=STAFF_PASSWORD, user=make_staff(mobile, group))
        return made[role]

    return make


# ---- USB keys and the agent ----------------------------------------------------------------------


@pytest.fixture
def agent(live_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Agent]:
    """A fresh SoftHSM token directory (the USB keys plugged into this PC) and the agent."""
    from tests.agent.softhsm import library_finalize, softhsm_required, use_token_dir

    softhsm_required()
    use_token_dir(tmp_path / "usbkeys", monkeypatch)
    monkeypatch.setenv("CERTDESK_AGENT_STATE_DIR", str(tmp_path / "agent-state"))
    yield Agent(live_server.url)
    library_finalize()
