from __future__ import annotations

import pytest

from certdesk.tokens.keymodels import key_model_info, key_unlock_method


@pytest.mark.parametrize(
    ("sn", "method"),
    [
        ("551234567890", "online"),
        ("561234567890", "online"),
        (" 5600000001 ", "online"),
        ("111234567890", "remote"),
        ("121234567890", "unknown"),
        ("5", "unknown"),
        ("", "unknown"),
    ],
)
def test_unlock_method_by_sn_prefix(sn: str, method: str) -> None:
    assert key_unlock_method(sn) == method


def test_model_by_prefix() -> None:
    info = key_model_info("561234567890")
    assert info is not None and info.model == "EZCA-K56"
    assert key_model_info("991234567890") is None
