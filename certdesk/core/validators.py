"""Validators for the identifiers Chinese forms ask for.

Each `check_*` function returns the normalised value or raises
`django.core.exceptions.ValidationError` with a message in Chinese that says
what is wrong and how to fix it. The `*_check_char` helpers compute check
characters; tests and demo data use them to make valid codes.
"""

from __future__ import annotations

import datetime
import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

# GB 32100-2015: the 31 characters a USCC may use (no I, O, S, V, Z).
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# GB 11643-1999
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"
MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")


def uscc_check_char(first17: str) -> str:
    total = sum(USCC_ALPHABET.index(ch) * w for ch, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def resident_id_check_char(first17: str) -> str:
    total = sum(int(ch) * w for ch, w in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11]


def _clean(value: str) -> str:
    # Full-width letters and digits are common when typing with a Chinese IME.
    table = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
    return str(value).translate(table).replace(" ", "").replace("\u3000", "").strip().upper()


def check_uscc(value: str) -> str:
    code = _clean(value)
    if not code:
        raise ValidationError(_("请填写统一社会信用代码。"), code="required")
    if len(code) != 18:
        raise ValidationError(
            _("统一社会信用代码应为18位，您填写了%(n)d位，请对照营业执照核对。") % {"n": len(code)},
            code="uscc_length",
        )
    bad = [ch for ch in code if ch not in USCC_ALPHABET]
    if bad:
        raise ValidationError(
            _("统一社会信用代码中不能出现“%(ch)s”（代码不使用字母 I、O、S、V、Z），请核对。") % {"ch": bad[0]},
            code="uscc_charset",
        )
    if uscc_check_char(code[:17]) != code[17]:
        raise ValidationError(_("统一社会信用代码校验位不正确，请逐位对照营业执照核对。"), code="uscc_checksum")
    return code


def check_resident_id(value: str) -> str:
    number = _clean(value)
    if not number:
        raise ValidationError(_("请填写身份证号码。"), code="required")
    if len(number) != 18:
        raise ValidationError(_("身份证号码应为18位，您填写了%(n)d位。") % {"n": len(number)}, code="id_length")
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise ValidationError(_("身份证号码前17位应为数字，最后一位为数字或 X。"), code="id_charset")
    try:
        birth = datetime.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise ValidationError(
            _("身份证号码中的出生日期 %(d)s 不存在，请核对。") % {"d": number[6:14]}, code="id_birthdate"
        ) from None
    if birth.year < 1900 or birth > datetime.date.today():
        raise ValidationError(
            _("身份证号码中的出生日期 %(d)s 不合理，请核对。") % {"d": number[6:14]}, code="id_birthdate"
        )
    if resident_id_check_char(number[:17]) != number[17]:
        raise ValidationError(_("身份证号码校验位不正确，请逐位核对。"), code="id_checksum")
    return number


def check_mobile(value: str) -> str:
    number = _clean(value).replace("-", "")
    if number.startswith("+86"):
        number = number[3:]
    elif number.startswith("0086"):
        number = number[4:]
    if not number:
        raise ValidationError(_("请填写手机号码。"), code="required")
    if not number.isdigit():
        raise ValidationError(_("手机号码只能包含数字。"), code="mobile_charset")
    if not MOBILE_RE.match(number):
        raise ValidationError(
            _("请填写11位中国大陆手机号码（以13–19开头），您填写的是“%(v)s”。") % {"v": value},
            code="mobile_format",
        )
    return number


def mask_resident_id(number: str) -> str:
    """`500103********0017`: region and last four visible, the birth date hidden."""
    if len(number) < 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def mask_mobile(number: str) -> str:
    return number[:3] + "****" + number[-4:] if len(number) == 11 else number
