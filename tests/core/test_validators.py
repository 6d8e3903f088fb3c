from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from certdesk.core.validators import (
    ID_CHECK_CHARS,
    USCC_ALPHABET,
    check_mobile,
    check_resident_id,
    check_uscc,
    mask_resident_id,
    resident_id_check_char,
    uscc_check_char,
)

uscc_body = st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17)


@st.composite
def valid_ids(draw: st.DrawFn) -> str:
    region = draw(st.text(alphabet="0123456789", min_size=6, max_size=6))
    birth = draw(st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2020, 12, 31)))
    seq = draw(st.text(alphabet="0123456789", min_size=3, max_size=3))
    first17 = f"{region}{birth:%Y%m%d}{seq}"
    return first17 + resident_id_check_char(first17)


def test_known_good_codes() -> None:
    assert check_uscc("91110000600037341L") == "91110000600037341L"
    assert check_resident_id("360426199101010071") == "360426199101010071"


def test_manual_sample_uscc_is_refused_with_length_reason() -> None:
    # The manual's sample is 17 characters long.
    with pytest.raises(ValidationError) as exc:
        check_uscc("91500000000000000")
    assert exc.value.code == "uscc_length"
    assert "18位" in exc.value.message


@given(uscc_body)
def test_generated_uscc_passes(body: str) -> None:
    code = body + uscc_check_char(body)
    assert check_uscc(code) == code


@given(uscc_body, st.integers(0, 17), st.sampled_from(USCC_ALPHABET))
def test_any_single_change_to_uscc_fails(body: str, position: int, replacement: str) -> None:
    code = body + uscc_check_char(body)
    changed = code[:position] + replacement + code[position + 1 :]
    if changed == code:
        return
    with pytest.raises(ValidationError):
        check_uscc(changed)


@given(valid_ids())
def test_generated_id_passes(number: str) -> None:
    assert check_resident_id(number) == number


@given(valid_ids(), st.integers(0, 17), st.sampled_from("0123456789X"))
def test_any_single_change_to_id_fails(number: str, position: int, replacement: str) -> None:
    changed = number[:position] + replacement + number[position + 1 :]
    if changed == number:
        return
    with pytest.raises(ValidationError):
        check_resident_id(changed)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "required"),
        ("36042619910101007", "id_length"),
        ("36042619910230007X", "id_birthdate"),  # 30 February
        ("3604261991010100A1", "id_charset"),
        ("360426199101010072", "id_checksum"),
    ],
)
def test_bad_ids_have_reasons(value: str, code: str) -> None:
    with pytest.raises(ValidationError) as exc:
        check_resident_id(value)
    assert exc.value.code == code


@pytest.mark.parametrize(
    ("value", "code"),
    [("91110000600037341I", "uscc_charset"), ("91110000600037341A", "uscc_checksum"), ("", "required")],
)
def test_bad_uscc_have_reasons(value: str, code: str) -> None:
    with pytest.raises(ValidationError) as exc:
        check_uscc(value)
    assert exc.value.code == code


def test_uscc_accepts_lowercase_and_fullwidth() -> None:
    assert check_uscc("９１１１００００６０００３７３４１l") == "91110000600037341L"


@pytest.mark.parametrize("value", ["13812345678", "+8613812345678", "138 1234 5678", "008619912345678"])
def test_good_mobiles(value: str) -> None:
    assert len(check_mobile(value)) == 11


@pytest.mark.parametrize("value", ["12812345678", "1381234567", "138123456789", "abc", "02388888888"])
def test_bad_mobiles(value: str) -> None:
    with pytest.raises(ValidationError) as exc:
        check_mobile(value)
    assert "手机号码" in exc.value.message


def test_id_check_chars_cover_x() -> None:
    assert "X" in ID_CHECK_CHARS


def test_mask_resident_id() -> None:
    assert mask_resident_id("500103199001010017") == "500103********0017"
