"""Fixtures for the key inventory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from tests.agent.softhsm import library_finalize, softhsm_required


@pytest.fixture
def demo_dir(tmp_path: Path, settings: Settings) -> Iterator[Path]:
    """TOKENS_DEMO_DIR for this test only (tokens_make_demo writes its SoftHSM tokens there)."""
    softhsm_required()
    directory = tmp_path / "usbkeys"
    settings.TOKENS_DEMO_DIR = directory
    settings.DEMO_MODE = True
    yield directory
    library_finalize()
