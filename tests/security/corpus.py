"""The attack corpora in one place: upload files and payment-callback forgeries.

The earlier suites keep their cases where they are. Upload cases are read from the
`@pytest.mark.parametrize` lists of tests/materials (so a case added there is picked up here), or
built with that suite's own builders; payment forgeries are built with the payment suite's fakes
and the sandbox's signer, one entry per refusal that tests/payments asserts, named after the test.
Each corpus then adds the new cases of issue #9. Nothing here is a fixture; the test modules
`test_upload_corpus.py` and `test_payment_forgery_corpus.py` run them.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import math
import secrets
import struct
import time
import urllib.parse
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from _pytest.mark.structures import ParameterSet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from PIL import ExifTags, Image, PngImagePlugin

from tests.materials import test_uploads as uploads_suite
from tests.materials import test_validation as validation_suite

# ============================================================================= uploads

ANY_REFUSAL: frozenset[str] = frozenset()


@dataclass(frozen=True)
class UploadCase:
    id: str
    raw: bytes
    filename: str
    origin: str  # the earlier test this input comes from, or "new (#9)"
    refused: frozenset[str] | None  # DomainError codes that are right; ANY_REFUSAL: any; None: accepted
    message_contains: str = ""
    # For accepted cases: bytes that must not survive into the stored copy.
    must_not_survive: tuple[bytes, ...] = ()
    expected_size: tuple[int, int] | None = None


def _parametrized(test: Callable[..., Any], *names: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(id, {argname: value}) for each case of the test's parametrize mark over `names`."""
    for mark in getattr(test, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        argnames = mark.args[0]
        argnames = [n.strip() for n in argnames.split(",")] if isinstance(argnames, str) else list(argnames)
        if set(names) - set(argnames):
            continue
        for index, value in enumerate(mark.args[1]):
            if isinstance(value, ParameterSet):
                values, case_id = tuple(value.values), value.id
            else:
                values, case_id = ((value,) if len(argnames) == 1 else tuple(value)), None
            yield (case_id if isinstance(case_id, str) else f"{index}"), dict(zip(argnames, values, strict=True))


def _origin(test: Callable[..., Any]) -> str:
    return f"{test.__module__.replace('.', '/')}.py::{test.__name__}"


def upload_cases_from_earlier_suites() -> list[UploadCase]:
    v = validation_suite
    cases: list[UploadCase] = []

    def add(test: Callable[..., Any], names: tuple[str, ...], make: Callable[[dict[str, Any]], UploadCase]) -> None:
        found = list(_parametrized(test, *names))
        assert found, f"{_origin(test)} no longer parametrizes over {names}: update tests/security/corpus.py"
        cases.extend(make({**args, "_id": case_id, "_origin": _origin(test)}) for case_id, args in found)

    add(
        v.test_non_images_are_refused_whatever_their_name,
        ("raw", "filename"),
        lambda a: UploadCase(
            f"non-image: {a['_id']}", a["raw"], a["filename"], a["_origin"], frozenset({"image_format_unsupported"})
        ),
    )
    add(
        v.test_other_image_formats_are_named_in_the_refusal,
        ("raw", "kind"),
        lambda a: UploadCase(
            f"other format: {a['_id']}",
            a["raw"],
            "scan.jpg",
            a["_origin"],
            frozenset({"image_format_unsupported"}),
            message_contains=a["kind"],
        ),
    )
    add(
        v.test_truncated_images_are_refused,
        ("raw", "filename"),
        lambda a: UploadCase(
            f"truncated: {a['_id']}", a["raw"], a["filename"], a["_origin"], frozenset({"image_truncated"})
        ),
    )
    add(
        v.test_polyglots_with_data_after_the_image_are_refused,
        ("raw", "filename"),
        lambda a: UploadCase(
            f"polyglot: {a['_id']}", a["raw"], a["filename"], a["_origin"], frozenset({"image_trailing_data"})
        ),
    )
    add(
        v.test_decompression_bombs_are_refused_from_the_header,
        ("raw", "filename"),
        lambda a: UploadCase(
            f"bomb: {a['_id']}", a["raw"], a["filename"], a["_origin"], frozenset({"image_too_many_pixels"})
        ),
    )
    add(
        v.test_animations_are_refused,
        ("fmt", "filename"),
        lambda a: UploadCase(
            f"animation: {a['fmt']}", v._animated(a["fmt"]), a["filename"], a["_origin"], frozenset({"image_animated"})
        ),
    )
    add(
        v.test_broken_pixel_data_in_a_well_formed_file_is_refused,
        ("make", "code"),
        lambda a: UploadCase(
            f"broken pixels: {a['_id']}", v._png_with_idat(a["make"]), "scan.png", a["_origin"], frozenset({a["code"]})
        ),
    )
    add(
        uploads_suite.test_bad_files_refused_and_other_slots_kept,
        ("name", "payload", "message"),
        lambda a: UploadCase(
            f"http refusal: {a['name']}",
            a["payload"],
            a["name"],
            a["_origin"],
            ANY_REFUSAL,
            message_contains=a["message"],
        ),
    )
    # Inputs the validation suite builds inside single tests: rebuilt with its own builders.
    cases += [
        UploadCase("empty file", b"", "scan.jpg", _origin(v.test_empty_file_is_refused), frozenset({"image_empty"})),
        UploadCase(
            "BMP over 3 MB",
            v.encode(v.picture(size=(1100, 1000)), "BMP"),
            "scan.bmp",
            _origin(v.test_oversized_image_is_refused_with_its_size),
            frozenset({"image_too_large"}),
        ),
        UploadCase(
            "RLE BMP that decodes past 3 MB",
            v._rle8_bmp(4000, 4000),
            "scan.bmp",
            _origin(v.test_run_length_bmp_that_would_be_stored_larger_than_3mb_is_refused),
            frozenset({"image_too_large_decoded"}),
        ),
        UploadCase(
            "executable with a Windows path",
            v.elf(),
            "C:\\Users\\张三\\Desktop\\营业执照.exe",
            _origin(v.test_refusal_names_only_the_file_not_its_path),
            frozenset({"image_format_unsupported"}),
        ),
    ]
    return cases


# --- new upload cases (#9) ----------------------------------------------------------------------

NEW = "new (#9)"


def _jpeg_with_huge_metadata(icc_bytes: int) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.ImageDescription] = "E" * 60_000  # one APP1 segment holds at most 64 KB
    # Pillow spreads a large ICC profile over as many APP2 segments as it needs (64 KB each).
    icc = (b"ICCPROFILE-SECRET" + secrets.token_bytes(64)) * (icc_bytes // 81)
    return validation_suite.encode(validation_suite.picture(), "JPEG", quality=90, exif=exif, icc_profile=icc)


def _png_info_with_script(*, compressed: bool = False) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("Description", "<script>alert(document.cookie)</script>", lang="zh-CN", tkey="说明", zip=compressed)
    info.add_text("Comment", "<img src=x onerror=alert(1)>")
    return info


def _png_with_script_in_itxt(*, compressed: bool) -> bytes:
    return validation_suite.png(pnginfo=_png_info_with_script(compressed=compressed))


def _bmp_with_height(height: int) -> bytes:
    raw = bytearray(validation_suite.bmp())
    raw[22:26] = struct.pack("<i", height)
    return bytes(raw)


def _gif_frame_at(left: int, top: int) -> bytes:
    """The suite's GIF with its one frame moved to (left, top): Pillow grows the canvas to fit."""
    raw = bytearray(validation_suite.gif())
    pos = 13
    if raw[10] & 0x80:
        pos += 3 * (2 ** ((raw[10] & 0x07) + 1))
    while raw[pos] == 0x21:  # extensions before the image: label, then sub-blocks
        pos += 2
        while raw[pos]:
            pos += raw[pos] + 1
        pos += 1
    assert raw[pos] == 0x2C, "image descriptor expected"
    raw[pos + 1 : pos + 5] = struct.pack("<HH", left, top)
    return bytes(raw)


def _zip_bomb(megabytes: int = 64) -> bytes:
    """A ZIP whose one member inflates to `megabytes` MB of zeros; written in chunks, never held whole."""
    out = io.BytesIO()
    chunk = b"\x00" * (1 << 20)
    with (
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("scan.png", "w", force_zip64=True) as member,
    ):
        for _ in range(megabytes):
            member.write(chunk)
    return out.getvalue()


def _gzip_bomb(megabytes: int = 64) -> bytes:
    out = io.BytesIO()
    chunk = b"\x00" * (1 << 20)
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as stream:
        for _ in range(megabytes):
            stream.write(chunk)
    return out.getvalue()


def new_upload_cases() -> list[UploadCase]:
    v = validation_suite
    png = v.png()
    pixel_limit_screen = (8_000, 5_001)  # 40,008,000 pixels: one row over the 40 MP limit
    assert math.prod(pixel_limit_screen) > 40_000_000 >= 8_000 * 5_000
    return [
        UploadCase(
            "JPEG with 60 KB EXIF and a 2 MB ICC profile",
            _jpeg_with_huge_metadata(2_000_000),
            "IMG_4001.jpg",
            NEW,
            None,
            must_not_survive=(b"ICC_PROFILE", b"ICCPROFILE-SECRET", b"Exif\x00\x00", b"EEEEEEEE", b"PhoneMaker"),
            expected_size=(64, 48),
        ),
        UploadCase(
            "JPEG whose ICC profile pushes it over 3 MB",
            _jpeg_with_huge_metadata(3_200_000),
            "IMG_4002.jpg",
            NEW,
            frozenset({"image_too_large"}),
        ),
        *(
            UploadCase(
                f"PNG with <script> in {'a compressed' if compressed else 'an'} iTXt chunk",
                _png_with_script_in_itxt(compressed=compressed),
                "scan.png",
                NEW,
                None,
                must_not_survive=(b"iTXt", b"tEXt", b"<script", b"onerror", b"alert("),
                expected_size=(64, 48),
            )
            for compressed in (False, True)
        ),
        UploadCase(
            "PNG with a colour profile and <script> in iTXt",
            validation_suite.png(
                pnginfo=_png_info_with_script(), icc_profile=b"<script>alert(1)</script>" + bytes(range(256)) * 4
            ),
            "scan.png",
            NEW,
            None,
            must_not_survive=(b"iCCP", b"iTXt", b"<script"),
            expected_size=(64, 48),
        ),
        UploadCase(
            "GIF with <script> in its comment",
            validation_suite.gif(comment=b"<script>alert(document.cookie)</script>"),
            "scan.gif",
            NEW,
            None,
            must_not_survive=(b"<script", b"alert("),
            expected_size=(64, 48),
        ),
        UploadCase(
            "BMP with a negative height (top-down rows)",
            _bmp_with_height(-48),
            "scan.bmp",
            NEW,
            None,
            expected_size=(64, 48),
        ),
        UploadCase(
            "BMP with height -2^31",
            _bmp_with_height(-(2**31)),
            "scan.bmp",
            NEW,
            frozenset({"image_too_many_pixels", "image_corrupt", "image_truncated"}),
        ),
        UploadCase(
            "GIF whose logical screen is one row over the pixel limit",
            v._gif_declaring(*pixel_limit_screen),
            "scan.gif",
            NEW,
            frozenset({"image_too_many_pixels"}),
        ),
        UploadCase(
            "GIF whose frame sits at (60000, 60000) of a 64x48 screen",
            _gif_frame_at(60_000, 60_000),
            "scan.gif",
            NEW,
            frozenset({"image_too_many_pixels"}),
        ),
        UploadCase(
            "ZIP bomb (64 MB of zeros) named .png",
            _zip_bomb(),
            "scan.png",
            NEW,
            frozenset({"image_format_unsupported"}),
        ),
        UploadCase("gzip bomb named .png", _gzip_bomb(), "scan.png", NEW, frozenset({"image_format_unsupported"})),
        UploadCase("PNG named ../../x.png", png, "../../x.png", NEW, None, expected_size=(64, 48)),
        UploadCase("PNG named ..\\..\\x.png", png, "..\\..\\x.png", NEW, None, expected_size=(64, 48)),
        UploadCase("PNG named CON.png (Windows reserved)", png, "CON.png", NEW, None, expected_size=(64, 48)),
        UploadCase("PNG named NUL (Windows reserved, no extension)", png, "NUL", NEW, None, expected_size=(64, 48)),
        UploadCase("PNG named com1.png (Windows reserved)", png, "com1.png", NEW, None, expected_size=(64, 48)),
        UploadCase("PNG named x.png::$DATA (NTFS stream)", png, "x.png::$DATA", NEW, None, expected_size=(64, 48)),
        UploadCase(
            "PNG named with a right-to-left override", png, "scan\u202egnp.exe", NEW, None, expected_size=(64, 48)
        ),
    ]


def upload_corpus() -> list[UploadCase]:
    cases = upload_cases_from_earlier_suites() + new_upload_cases()
    ids = [case.id for case in cases]
    assert len(ids) == len(set(ids)), "upload corpus ids must be unique"
    return cases


# ============================================================================= payment callbacks


@dataclass
class CallbackTarget:
    """What a forgery is built against. `paid` was paid at the gateway and its callback has not
    arrived; `other` is another order's open payment at the same gateway."""

    gateway: str
    paid_merchant_no: str
    other_merchant_no: str
    fake: Any = None  # FakeWeChatPay / FakeAlipay from tests/payments/fakes.py (None for the sandbox)
    keys: Any = None  # tests/payments/conftest.py Keys
    restore: list[Callable[[], None]] = field(default_factory=list)


Build = Callable[[CallbackTarget], tuple[bytes, dict[str, str]]]


@dataclass(frozen=True)
class CallbackForgery:
    id: str
    gateway: str
    origin: str
    build: Build
    reasons: frozenset[str]  # PaymentCallback.reason values that are right for the refusal
    known_bug: str = ""  # set: the case fails today; xfail(strict=True) with this description


def _sandbox(merchant_no: str, **kwargs: Any) -> tuple[bytes, dict[str, str]]:
    from certdesk.payments.gateways.sandbox import sandbox_notification

    return sandbox_notification(merchant_no=merchant_no, **kwargs)


def _sandbox_signed(body: bytes) -> tuple[bytes, dict[str, str]]:
    from certdesk.payments.gateways.sandbox import sandbox_sign

    return body, sandbox_sign(body=body)


def _sandbox_payload(target: CallbackTarget, **changes: Any) -> dict[str, Any]:
    return {**json.loads(_sandbox(target.paid_merchant_no)[0]), **changes}


def _with_headers_of(build_body: Build, build_headers: Build) -> Build:
    return lambda t: (build_body(t)[0], build_headers(t)[1])


def _wechat_resigned(target: CallbackTarget, text: str, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """The platform key's signature over an edited envelope (what only WeChat Pay could make)."""
    from tests.payments.fakes import rsa_sign

    message = f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n{text}\n"
    return text.encode(), {**headers, "Wechatpay-Signature": rsa_sign(target.fake.platform_key, message)}


def _wechat_other_apiv3_key(target: CallbackTarget) -> tuple[bytes, dict[str, str]]:
    real = target.fake.apiv3_key
    target.fake.apiv3_key = secrets.token_hex(16)
    try:
        return target.fake.notification(target.paid_merchant_no)
    finally:
        target.fake.apiv3_key = real


def _alipay_fields(target: CallbackTarget, **overrides: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(target.fake.notification(target.paid_merchant_no, overrides=overrides).decode()))


def _form(fields: dict[str, str] | list[tuple[str, str]]) -> tuple[bytes, dict[str, str]]:
    return urllib.parse.urlencode(fields).encode(), {}


def _alipay_rsa1(target: CallbackTarget) -> tuple[bytes, dict[str, str]]:
    """A genuine SHA1withRSA ("RSA") signature by Alipay's own key: a downgrade, not a forgery."""
    fields = _alipay_fields(target, sign_type="RSA")
    unsigned = {k: v for k, v in fields.items() if k not in ("sign", "sign_type")}
    content = "&".join(f"{k}={unsigned[k]}" for k in sorted(unsigned))
    signature = target.keys.alipay.sign(content.encode(), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    fields["sign"] = base64.b64encode(signature).decode()
    return _form(fields)


def _origin_name(module: str, test: str) -> str:
    return f"tests/payments/{module}.py::{test}"


def _earlier_sandbox() -> list[CallbackForgery]:
    def o(test: str) -> str:
        return _origin_name("test_sandbox", test)

    def tampered(t: CallbackTarget) -> tuple[bytes, dict[str, str]]:
        body, headers = _sandbox(t.paid_merchant_no)
        return body.replace(b'"trade_state":"SUCCESS"', b'"trade_state":"SUCCESS" '), headers

    def malformed(t: CallbackTarget) -> tuple[bytes, dict[str, str]]:
        return _sandbox_signed(json.dumps({"out_trade_no": t.paid_merchant_no, "amount_fen": "70000"}).encode())

    r = frozenset
    return [
        CallbackForgery(
            "sandbox: bad signature", "sandbox", o("test_refused_bad_signature"), tampered, r({"signature_invalid"})
        ),
        CallbackForgery(
            "sandbox: changed amount",
            "sandbox",
            o("test_refused_changed_amount"),
            lambda t: _sandbox(t.paid_merchant_no, overrides={"amount_fen": 1}),
            r({"amount_mismatch"}),
        ),
        CallbackForgery(
            "sandbox: other merchant",
            "sandbox",
            o("test_refused_other_merchant"),
            lambda t: _sandbox(t.paid_merchant_no, overrides={"merchant_id": "someone-else"}),
            r({"merchant_mismatch"}),
        ),
        CallbackForgery(
            "sandbox: unknown order",
            "sandbox",
            o("test_refused_unknown_order"),
            lambda t: _sandbox(t.paid_merchant_no, overrides={"out_trade_no": "XB000P01"}),
            r({"unknown_order"}),
        ),
        CallbackForgery(
            "sandbox: stale timestamp",
            "sandbox",
            o("test_refused_stale_timestamp"),
            lambda t: _sandbox(t.paid_merchant_no, timestamp=int(time.time()) - 301),
            r({"stale"}),
        ),
        CallbackForgery(
            "sandbox: unsigned",
            "sandbox",
            o("test_refused_unsigned"),
            lambda t: (_sandbox(t.paid_merchant_no)[0], {}),
            r({"unsigned"}),
        ),
        CallbackForgery(
            "sandbox: malformed body, signed",
            "sandbox",
            o("test_malformed_body_signed_is_refused"),
            malformed,
            r({"malformed"}),
        ),
    ]


def _earlier_wechat() -> list[CallbackForgery]:
    from tests.payments.fakes import rsa_sign

    def o(test: str) -> str:
        return _origin_name("test_wechat", test)

    def stranger_signed(t: CallbackTarget) -> tuple[bytes, dict[str, str]]:
        body, headers = t.fake.notification(t.paid_merchant_no)
        message = f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n{body.decode()}\n"
        return body, {**headers, "Wechatpay-Signature": rsa_sign(t.keys.stranger, message)}

    def tampered(t: CallbackTarget) -> tuple[bytes, dict[str, str]]:
        body, headers = t.fake.notification(t.paid_merchant_no)
        return body.replace(b'"summary"', b'"summary" '), headers

    def resource(**changes: Any) -> Build:
        return lambda t: t.fake.notification(t.paid_merchant_no, resource=changes)

    r = frozenset
    return [
        CallbackForgery(
            "wechat: bad signature",
            "wechat",
            o("test_refused_bad_signature"),
            stranger_signed,
            r({"signature_invalid"}),
        ),
        CallbackForgery(
            "wechat: tampered body", "wechat", o("test_refused_tampered_body"), tampered, r({"signature_invalid"})
        ),
        CallbackForgery(
            "wechat: changed amount",
            "wechat",
            o("test_refused_changed_amount"),
            resource(amount={"total": 1, "currency": "CNY"}),
            r({"amount_mismatch"}),
        ),
        CallbackForgery(
            "wechat: other app",
            "wechat",
            o("test_refused_other_app"),
            resource(appid="wx0000000000000000"),
            r({"app_mismatch"}),
        ),
        CallbackForgery(
            "wechat: other merchant",
            "wechat",
            o("test_refused_other_merchant"),
            resource(mchid="1900000999"),
            r({"merchant_mismatch"}),
        ),
        CallbackForgery(
            "wechat: unknown order",
            "wechat",
            o("test_refused_unknown_order"),
            resource(out_trade_no="XB2601010000000P01"),
            r({"unknown_order"}),
        ),
        CallbackForgery(
            "wechat: stale timestamp",
            "wechat",
            o("test_refused_stale_timestamp"),
            lambda t: t.fake.notification(t.paid_merchant_no, timestamp=int(time.time()) - 6 * 60),
            r({"stale"}),
        ),
        CallbackForgery(
            "wechat: probe signature",
            "wechat",
            o("test_refused_probe_signature"),
            lambda t: t.fake.notification(t.paid_merchant_no, signature="WECHATPAY/SIGNTEST/" + secrets.token_hex(64)),
            r({"probe_signature"}),
        ),
        CallbackForgery(
            "wechat: unknown serial",
            "wechat",
            o("test_refused_unknown_serial"),
            lambda t: t.fake.notification(t.paid_merchant_no, serial="PUB_KEY_ID_SOMEONE_ELSE"),
            r({"unknown_serial"}),
        ),
        CallbackForgery(
            "wechat: resource sealed with another APIv3 key",
            "wechat",
            o("test_refused_wrong_apiv3_key"),
            _wechat_other_apiv3_key,
            r({"signature_invalid"}),
        ),
    ]


def _earlier_alipay() -> list[CallbackForgery]:
    def o(test: str) -> str:
        return _origin_name("test_alipay", test)

    def notification(**overrides: str) -> Build:
        return lambda t: (t.fake.notification(t.paid_merchant_no, overrides=overrides), {})

    def tampered(t: CallbackTarget) -> tuple[bytes, dict[str, str]]:
        return _form({**_alipay_fields(t), "total_amount": "0.01"})

    def unsigned(t: CallbackTarget) -> tuple[bytes, dict[str, str]]:
        fields = _alipay_fields(t)
        del fields["sign"]
        return _form(fields)

    r = frozenset
    return [
        CallbackForgery(
            "alipay: bad signature",
            "alipay",
            o("test_refused_bad_signature"),
            lambda t: (t.fake.notification(t.paid_merchant_no, sign_key=t.keys.stranger), {}),
            r({"signature_invalid"}),
        ),
        CallbackForgery(
            "alipay: tampered field", "alipay", o("test_refused_tampered_field"), tampered, r({"signature_invalid"})
        ),
        CallbackForgery(
            "alipay: changed amount",
            "alipay",
            o("test_refused_changed_amount"),
            notification(total_amount="699.99"),
            r({"amount_mismatch"}),
        ),
        CallbackForgery(
            "alipay: other app",
            "alipay",
            o("test_refused_other_app"),
            notification(app_id="2021000000000001"),
            r({"app_mismatch"}),
        ),
        CallbackForgery(
            "alipay: other seller",
            "alipay",
            o("test_refused_other_seller"),
            notification(seller_id="2088000000000001"),
            r({"merchant_mismatch"}),
        ),
        CallbackForgery(
            "alipay: unknown order",
            "alipay",
            o("test_refused_unknown_order"),
            notification(out_trade_no="XB2601010000000P01"),
            r({"unknown_order"}),
        ),
        CallbackForgery(
            "alipay: without signature", "alipay", o("test_refused_without_signature"), unsigned, r({"unsigned"})
        ),
        CallbackForgery(
            "alipay: sign_type RSA",
            "alipay",
            o("test_refused_rsa1_sign_type"),
            notification(sign_type="RSA"),
            r({"signature_type"}),
        ),
        CallbackForgery(
            "alipay: three-decimal amount",
            "alipay",
            o("test_refused_float_like_amount"),
            notification(total_amount="700.001"),
            r({"malformed"}),
        ),
    ]


DUPLICATE_KEYS_BUG = (
    "BUG (hardening): a correctly signed callback whose JSON repeats a key is applied with the last "
    "value winning (json.loads) instead of being refused as malformed — e.g. "
    '{"trade_state":"NOTPAY",…,"trade_state":"SUCCESS"} pays. The signature covers the raw bytes, so '
    "only the gateway (or whoever holds its key) can make one; but an ambiguous signed message should "
    "not be interpreted. Fix: parse callback bodies with an object_pairs_hook that refuses duplicate "
    "names (payments/gateways/sandbox.py parse_callback; wechat.py for the envelope — the decrypted "
    "resource is parsed inside wechatpayv3 and needs the same after decryption)."
)


def _new_forgeries() -> list[CallbackForgery]:
    from tests.payments.fakes import rsa_sign

    r = frozenset
    cases: list[CallbackForgery] = []

    # --- another order's merchant number -------------------------------------------------------
    def sandbox_renamed(t: CallbackTarget) -> tuple[bytes, dict[str, str]]:
        body, headers = _sandbox(t.paid_merchant_no)
        return body.replace(t.paid_merchant_no.encode(), t.other_merchant_no.encode()), headers

    def alipay_renamed(t: CallbackTarget) -> tuple[bytes, dict[str, str]]:
        return _form({**_alipay_fields(t), "out_trade_no": t.other_merchant_no})

    def wechat_envelope_renamed(t: CallbackTarget) -> tuple[bytes, dict[str, str]]:
        body, headers = t.fake.notification(t.paid_merchant_no)
        envelope = json.loads(body)
        envelope["out_trade_no"] = t.other_merchant_no  # plaintext beside the sealed resource
        return json.dumps(envelope, ensure_ascii=False).encode(), headers

    def wechat_resealed_for_other(t: CallbackTarget) -> tuple[bytes, dict[str, str]]:
        """The paid trade's resource re-sealed naming the other order, under a guessed APIv3 key,
        signed by someone else's key: all an attacker without our keys can do."""
        real = t.fake.apiv3_key
        t.fake.apiv3_key = secrets.token_hex(16)
        try:
            body, headers = t.fake.notification(t.paid_merchant_no, resource={"out_trade_no": t.other_merchant_no})
        finally:
            t.fake.apiv3_key = real
        message = f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n{body.decode()}\n"
        return body, {**headers, "Wechatpay-Signature": rsa_sign(t.keys.stranger, message)}

    cases += [
        CallbackForgery(
            "sandbox: paid callback renamed to another order", "sandbox", NEW, sandbox_renamed, r({"signature_invalid"})
        ),
        CallbackForgery(
            "sandbox: paid callback body with another order's signed headers",
            "sandbox",
            NEW,
            _with_headers_of(lambda t: _sandbox(t.paid_merchant_no), lambda t: _sandbox(t.other_merchant_no)),
            r({"signature_invalid"}),
        ),
        CallbackForgery(
            "alipay: paid notification renamed to another order",
            "alipay",
            NEW,
            alipay_renamed,
            r({"signature_invalid"}),
        ),
        CallbackForgery(
            "alipay: another order's signature on the paid notification",
            "alipay",
            NEW,
            lambda t: _form(
                {
                    **_alipay_fields(t),
                    "sign": dict(urllib.parse.parse_qsl(t.fake.notification(t.other_merchant_no).decode()))["sign"],
                }
            ),
            r({"signature_invalid"}),
        ),
        CallbackForgery(
            "wechat: another order's merchant number added to the envelope",
            "wechat",
            NEW,
            wechat_envelope_renamed,
            r({"signature_invalid"}),
        ),
        CallbackForgery(
            "wechat: paid body with another order's signed headers",
            "wechat",
            NEW,
            _with_headers_of(
                lambda t: t.fake.notification(t.paid_merchant_no), lambda t: t.fake.notification(t.other_merchant_no)
            ),
            r({"signature_invalid"}),
        ),
        CallbackForgery(
            "wechat: resource re-sealed for another order without our keys",
            "wechat",
            NEW,
            wechat_resealed_for_other,
            r({"signature_invalid"}),
        ),
    ]

    # --- duplicated keys -----------------------------------------------------------------------
    def sandbox_duplicate_appended(t: CallbackTarget) -> tuple[bytes, dict[str, str]]:
        body, headers = _sandbox(t.paid_merchant_no)
        return body[:-1] + f',"out_trade_no":"{t.other_merchant_no}"}}'.encode(), headers

    def sandbox_duplicate_signed(t: CallbackTarget) -> tuple[bytes, dict[str, str]]:
        body, _ = _sandbox(t.paid_merchant_no)
        return _sandbox_signed(b'{"trade_state":"NOTPAY",' + body[1:])

    def wechat_duplicate_appended(t: CallbackTarget) -> tuple[bytes, dict[str, str]]:
        body, headers = t.fake.notification(t.paid_merchant_no)
        return body[:-1] + b',"event_type":"TRANSACTION.SUCCESS"}', headers

    def wechat_duplicate_signed(t: CallbackTarget) -> tuple[bytes, dict[str, str]]:
        body, headers = t.fake.notification(t.paid_merchant_no)
        return _wechat_resigned(t, '{"event_type":"TRANSACTION.CLOSED",' + body.decode()[1:], headers)

    def alipay_duplicate_field(t: CallbackTarget) -> tuple[bytes, dict[str, str]]:
        fields = list(_alipay_fields(t).items())
        return _form([*fields, ("out_trade_no", t.other_merchant_no)])

    cases += [
        CallbackForgery(
            "sandbox: duplicated key appended after signing",
            "sandbox",
            NEW,
            sandbox_duplicate_appended,
            r({"signature_invalid"}),
        ),
        CallbackForgery(
            "sandbox: duplicated key, signed (NOTPAY then SUCCESS)",
            "sandbox",
            NEW,
            sandbox_duplicate_signed,
            r({"malformed"}),
        ),
        CallbackForgery(
            "wechat: duplicated key appended after signing",
            "wechat",
            NEW,
            wechat_duplicate_appended,
            r({"signature_invalid", "malformed"}),  # refused on parse, before the signature,
        ),
        CallbackForgery(
            "wechat: duplicated event_type, signed (CLOSED then SUCCESS)",
            "wechat",
            NEW,
            wechat_duplicate_signed,
            r({"malformed"}),
        ),
        CallbackForgery("alipay: repeated out_trade_no field", "alipay", NEW, alipay_duplicate_field, r({"malformed"})),
    ]

    # --- unknown platform key, weak signature type ------------------------------------------------
    def wechat_unknown_key(t: CallbackTarget) -> tuple[bytes, dict[str, str]]:
        body, headers = t.fake.notification(t.paid_merchant_no, serial="PUB_KEY_ID_0114232019092300000000000000000099")
        message = f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n{body.decode()}\n"
        return body, {**headers, "Wechatpay-Signature": rsa_sign(t.keys.stranger, message)}

    cases += [
        CallbackForgery(
            "wechat: Wechatpay-Serial names an unknown platform key (signed by it)",
            "wechat",
            NEW,
            wechat_unknown_key,
            r({"unknown_serial"}),
        ),
        CallbackForgery(
            "alipay: sign_type RSA with a genuine SHA1withRSA signature",
            "alipay",
            NEW,
            _alipay_rsa1,
            r({"signature_type"}),
        ),
        CallbackForgery(
            "alipay: sign_type missing",
            "alipay",
            NEW,
            lambda t: _form({k: v for k, v in _alipay_fields(t).items() if k != "sign_type"}),
            r({"signature_type"}),
        ),
    ]

    # --- amounts: 0.001, -1, 1e9, NaN, each signed by the gateway's own key -----------------------
    amounts: list[tuple[str, Any, Any, str, frozenset[str]]] = [
        # label, sandbox amount_fen / wechat total (JSON numbers), alipay total_amount (yuan text), reasons
        ("0.001", 0.001, 0.001, "0.001", r({"malformed"})),
        ("-1", -1, -1, "-1", r({"amount_mismatch", "malformed"})),
        ("1e9", 1e9, 1e9, "1e9", r({"amount_mismatch", "malformed"})),
        ("NaN", math.nan, math.nan, "NaN", r({"malformed"})),
    ]

    def sandbox_amount(fen: Any) -> Build:
        return lambda t: _sandbox_signed(json.dumps(_sandbox_payload(t, amount_fen=fen)).encode())

    def wechat_amount(total: Any) -> Build:
        return lambda t: t.fake.notification(
            t.paid_merchant_no, resource={"amount": {"total": total, "currency": "CNY"}}
        )

    def alipay_amount(yuan: str) -> Build:
        return lambda t: (t.fake.notification(t.paid_merchant_no, overrides={"total_amount": yuan}), {})

    for label, fen, total, yuan, reasons in amounts:
        cases += [
            CallbackForgery(
                f"sandbox: amount {label}",
                "sandbox",
                NEW,
                sandbox_amount(fen),
                reasons,
            ),
            CallbackForgery(f"wechat: amount {label}", "wechat", NEW, wechat_amount(total), reasons),
            CallbackForgery(f"alipay: amount {label}", "alipay", NEW, alipay_amount(yuan), reasons),
        ]
    return cases


def payment_forgery_corpus() -> list[CallbackForgery]:
    cases = _earlier_sandbox() + _earlier_wechat() + _earlier_alipay() + _new_forgeries()
    ids = [case.id for case in cases]
    assert len(ids) == len(set(ids)), "payment corpus ids must be unique"
    return cases
