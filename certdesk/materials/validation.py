"""Validation of uploaded material images (营业执照, 身份证 scans, signed forms…).

`upload_image_validate` decides by content, never by the file name or the
declared content type, and returns a re-encoded copy that carries only pixels:
no EXIF (GPS), XMP, comments or colour profiles, and nothing appended.

Order of checks, cheapest and safest first:
1. size, reading at most the limit + 1 bytes;
2. magic bytes: only JPEG, PNG, GIF, BMP get anywhere near a decoder;
3. a structural walk of the container (our own, a few dozen lines per format)
   that finds the image's dimensions and where the image ends — without
   decompressing anything;
4. pixel count from that header (decompression bombs), trailing data after the
   image's end (polyglots), animation;
5. a full decode with Pillow restricted to that one format;
6. re-encoding into the same format.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.utils.translation import gettext as _
from PIL import Image, ImageFile, ImageOps, JpegImagePlugin

from certdesk.core.errors import DomainError

MAX_UPLOAD_BYTES = 3 * 1024 * 1024  # the manual's 3M (3072KB)
# A4 scanned at 600 dpi is 34.8 megapixels; a 12-megapixel phone photo is far
# below. 40 MP decoded as RGB is 120 MB of memory, the most one upload may cost.
MAX_PIXELS = 40_000_000

# Pillow's own bomb check is the backstop should our header walk and Pillow
# ever disagree on the size. Pillow only warns between 1x and 2x its limit and
# raises above 2x; our walk refuses everything above 1x before Pillow runs.
# Never loosen a stricter limit set elsewhere in the process.
if Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS > MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS

# Pillow format name -> (canonical extension, content type)
_FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "GIF": ("gif", "image/gif"),
    "BMP": ("bmp", "image/bmp"),
}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG), CC (DAC) are not frames.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}


class SupportsRead(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class ValidatedImage:
    data: bytes = field(repr=False)  # the re-encoded file: this, never the upload, is stored
    format: str  # Pillow's name: JPEG, PNG, GIF or BMP
    extension: str  # jpg, png, gif or bmp (from the content, not the uploaded name)
    content_type: str
    width: int
    height: int
    sha256: str  # hex digest of `data`

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class _Layout:
    width: int
    height: int
    end: int  # offset just past the image (and any images it declares)
    frames: int


class _TruncatedError(Exception):
    """The container ends before the image does."""


class _MalformedError(Exception):
    """The container is not a well-formed image of its format."""


def upload_image_validate(*, data: bytes | SupportsRead, filename: str) -> ValidatedImage:
    """Check one uploaded material image and return a metadata-free copy to store.

    Raises `DomainError` with a Chinese message and one of the codes
    image_empty, image_too_large, image_format_unsupported, image_truncated,
    image_corrupt, image_too_many_pixels, image_trailing_data, image_animated,
    image_too_large_decoded.
    """
    name = _display_name(filename)
    raw = _read_bounded(data=data, name=name)
    fmt = _sniff_format(raw=raw, name=name)
    try:
        layout = _LAYOUT_PARSERS[fmt](raw)
    except _TruncatedError:
        raise _truncated_error(name) from None
    except (_MalformedError, IndexError, struct.error):
        raise _corrupt_error(name) from None
    _check_pixels(width=layout.width, height=layout.height, name=name)
    _check_trailing_data(tail=raw[layout.end :], name=name)
    if layout.frames > 1:
        # A scan is one page. Keeping only frame 1 of an animation would show the
        # reviewer something the customer may not have meant to send, and the
        # customer would only learn of it a working day later from a rejection.
        raise DomainError(
            _("图片“%(name)s”是动图（共 %(n)d 帧）：证件资料须为单张静态图片，请上传扫描件或照片。")
            % {"name": name, "n": layout.frames},
            code="image_animated",
        )
    cleaned, width, height = _decode_and_reencode(raw=raw, fmt=fmt, name=name)
    extension, content_type = _FORMATS[fmt]
    return ValidatedImage(
        data=cleaned,
        format=fmt,
        extension=extension,
        content_type=content_type,
        width=width,
        height=height,
        sha256=hashlib.sha256(cleaned).hexdigest(),
    )


# --- reading and sniffing ---------------------------------------------------


def _display_name(filename: str) -> str:
    # Browsers on Windows may send a full path; the name is user input, keep it short and printable.
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    if not base:
        return _("未命名文件")
    return base if len(base) <= 60 else base[:59] + "…"


def _size_text(size: int) -> str:
    # Rounded up so a file one byte over the limit never reads as "3.0MB".
    return f"{math.ceil(size * 10 / (1024 * 1024)) / 10:.1f}MB"


def _stream_size(stream: SupportsRead) -> int | None:
    size = getattr(stream, "size", None)  # Django's UploadedFile knows it
    if isinstance(size, int):
        return size
    seek, tell = getattr(stream, "seek", None), getattr(stream, "tell", None)
    if seek is None or tell is None:
        return None
    try:
        here = tell()
        end = seek(0, io.SEEK_END)
        seek(here)
    except (OSError, ValueError):
        return None
    return end if isinstance(end, int) else None


def _read_bounded(*, data: bytes | SupportsRead, name: str) -> bytes:
    limit = MAX_UPLOAD_BYTES
    declared: int | None
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
        declared = len(raw)
    else:
        declared = _stream_size(data)
        seek = getattr(data, "seek", None)
        if seek is not None:
            with contextlib.suppress(OSError, ValueError):
                seek(0)  # validate the whole upload even if something already read from it
        chunks: list[bytes] = []
        got = 0
        # Never read more than limit + 1: enough to know the file is too big.
        while got <= limit:
            chunk = data.read(limit + 1 - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        raw = b"".join(chunks)
    if not raw:
        raise DomainError(
            _("文件“%(name)s”是空文件（0 字节），请重新选择要上传的图片。") % {"name": name}, code="image_empty"
        )
    if len(raw) > limit:
        if declared is not None and declared > limit:
            message = _("图片“%(name)s”大小为 %(size)s，超过 3MB（3072KB）上限，请压缩后重新上传。") % {
                "name": name,
                "size": _size_text(declared),
            }
        else:  # a stream of unknown length: we stopped reading at the limit
            message = _("图片“%(name)s”超过 3MB（3072KB）上限，请压缩后重新上传。") % {"name": name}
        raise DomainError(message, code="image_too_large")
    return raw


def _sniff_format(*, raw: bytes, name: str) -> str:
    if raw.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if raw.startswith(_PNG_SIGNATURE):
        return "PNG"
    if raw.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if raw.startswith(b"BM"):
        return "BMP"
    kind = _other_kind(raw)
    if kind is not None:
        raise DomainError(
            _(
                "文件“%(name)s”是%(kind)s，本平台仅支持 jpg、jpeg、bmp、gif、png 格式的图片，请转换为 jpg 或 png 后重新上传。"
            )
            % {"name": name, "kind": kind},
            code="image_format_unsupported",
        )
    raise DomainError(
        _("文件“%(name)s”不是图片：仅支持 jpg、jpeg、bmp、gif、png 格式的图片。") % {"name": name},
        code="image_format_unsupported",
    )


def _other_kind(raw: bytes) -> str | None:
    """Name formats people often mistake for the accepted ones, so the message can say what to convert."""
    if raw.startswith(b"%PDF-"):
        return _("PDF 文档")
    if raw.startswith((b"II*\x00", b"MM\x00*")):
        return _("TIFF 图片")
    if raw.startswith(b"RIFF") and raw[8:12] == b"WEBP":
        return _("WebP 图片")
    if raw[4:8] == b"ftyp":
        if raw[8:12] in _HEIF_BRANDS:
            return _("HEIC 图片（苹果手机默认照片格式）")
        if raw[8:12] in {b"avif", b"avis"}:
            return _("AVIF 图片")
    return None


# --- structural walks: dimensions and where the image ends ------------------


def _be16(raw: bytes, pos: int) -> int:
    return int.from_bytes(raw[pos : pos + 2], "big")


def _be32(raw: bytes, pos: int) -> int:
    return int.from_bytes(raw[pos : pos + 4], "big")


def _le16(raw: bytes, pos: int) -> int:
    return int.from_bytes(raw[pos : pos + 2], "little")


def _le32(raw: bytes, pos: int, *, signed: bool = False) -> int:
    return int.from_bytes(raw[pos : pos + 4], "little", signed=signed)


def _jpeg_stream(raw: bytes, start: int) -> tuple[int, int, int, bool]:
    """Walk one JPEG stream from its SOI: (end after EOI, width, height, declares MPF)."""
    n = len(raw)
    if raw[start : start + 2] != b"\xff\xd8":
        raise _MalformedError
    pos = start + 2
    width = height = 0
    seen_frame = has_mpf = False
    while True:
        if pos >= n:
            raise _TruncatedError
        if raw[pos] != 0xFF:
            raise _MalformedError
        while pos < n and raw[pos] == 0xFF:  # fill bytes may precede a marker
            pos += 1
        if pos >= n:
            raise _TruncatedError
        marker = raw[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            if not seen_frame:
                raise _MalformedError
            return pos, width, height, has_mpf
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # RSTn, TEM: no length
            continue
        if marker in (0x00, 0xD8):
            raise _MalformedError
        if pos + 2 > n:
            raise _TruncatedError
        length = _be16(raw, pos)
        if length < 2:
            raise _MalformedError
        segment_end = pos + length
        if segment_end > n:
            raise _TruncatedError
        if marker in _JPEG_SOF and not seen_frame:
            if length < 8:
                raise _MalformedError
            height, width = _be16(raw, pos + 3), _be16(raw, pos + 5)
            if width == 0 or height == 0:  # a height left to a DNL marker: nobody sends these
                raise _MalformedError
            seen_frame = True
        elif marker == 0xE2 and raw[pos + 2 : pos + 6] == b"MPF\x00":
            has_mpf = True
        pos = segment_end
        if marker == 0xDA:  # SOS: entropy-coded data up to the next real marker
            if not seen_frame:
                raise _MalformedError
            while True:
                ff = raw.find(b"\xff", pos)
                if ff < 0 or ff + 1 >= n:
                    raise _TruncatedError
                following = raw[ff + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:  # stuffed byte, restart marker
                    pos = ff + 2
                elif following == 0xFF:  # fill byte before a marker
                    pos = ff + 1
                else:
                    pos = ff
                    break


def _jpeg_layout(raw: bytes) -> _Layout:
    end, width, height, has_mpf = _jpeg_stream(raw, 0)
    if has_mpf:
        # CIPA DC-007 multi-picture files (HDR gain maps, depth maps of recent
        # phones) put further complete JPEG streams after the first EOI. They
        # are declared in the header, so they are not trailing data; only the
        # primary image is kept.
        while raw.startswith(b"\xff\xd8", end):
            end = _jpeg_stream(raw, end)[0]
    return _Layout(width=width, height=height, end=end, frames=1)


def _png_layout(raw: bytes) -> _Layout:
    n = len(raw)
    pos = len(_PNG_SIGNATURE)
    width = height = 0
    frames = 1
    first = True
    while True:
        if pos + 8 > n:
            raise _TruncatedError
        length = _be32(raw, pos)
        chunk_type = raw[pos + 4 : pos + 8]
        if length > 0x7FFFFFFF:
            raise _MalformedError
        chunk_end = pos + 12 + length  # length, type, data, CRC
        if chunk_end > n:
            raise _TruncatedError
        if first:
            if chunk_type != b"IHDR" or length != 13:
                raise _MalformedError
            width, height = _be32(raw, pos + 8), _be32(raw, pos + 12)
            if width == 0 or height == 0:
                raise _MalformedError
            first = False
        elif chunk_type == b"acTL" and length >= 8:  # APNG animation control
            frames = max(1, _be32(raw, pos + 8))
        pos = chunk_end
        if chunk_type == b"IEND":
            return _Layout(width=width, height=height, end=pos, frames=frames)


def _gif_skip_sub_blocks(raw: bytes, pos: int) -> int:
    n = len(raw)
    while True:
        if pos >= n:
            raise _TruncatedError
        size = raw[pos]
        pos += 1
        if size == 0:
            return pos
        pos += size


def _gif_layout(raw: bytes) -> _Layout:
    n = len(raw)
    if n < 13:
        raise _TruncatedError
    width, height = _le16(raw, 6), _le16(raw, 8)
    flags = raw[10]
    pos = 13
    if flags & 0x80:
        pos += 3 * (2 ** ((flags & 0x07) + 1))
    frames = 0
    while True:
        if pos >= n:
            raise _TruncatedError
        block = raw[pos]
        if block == 0x3B:  # trailer
            if frames == 0:
                raise _MalformedError
            return _Layout(width=width, height=height, end=pos + 1, frames=frames)
        if block == 0x21:  # extension: label, then data sub-blocks
            pos = _gif_skip_sub_blocks(raw, pos + 2)
        elif block == 0x2C:  # image descriptor
            if pos + 10 > n:
                raise _TruncatedError
            left, top = _le16(raw, pos + 1), _le16(raw, pos + 3)
            frame_width, frame_height = _le16(raw, pos + 5), _le16(raw, pos + 7)
            # Pillow grows the canvas to fit a frame that sticks out of the logical screen.
            width, height = max(width, left + frame_width), max(height, top + frame_height)
            local_flags = raw[pos + 9]
            pos += 10
            if local_flags & 0x80:
                pos += 3 * (2 ** ((local_flags & 0x07) + 1))
            pos = _gif_skip_sub_blocks(raw, pos + 1)  # after the LZW minimum code size
            frames += 1
        else:
            raise _MalformedError


_BMP_INFO_HEADER_SIZES = frozenset({40, 52, 56, 64, 108, 124})


def _bmp_layout(raw: bytes) -> _Layout:
    n = len(raw)
    if n < 26:
        raise _TruncatedError
    file_size, pixel_offset, header_size = _le32(raw, 2), _le32(raw, 10), _le32(raw, 14)
    compression = size_image = 0
    if header_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height, bits = _le16(raw, 18), _le16(raw, 20), _le16(raw, 24)
    elif header_size in _BMP_INFO_HEADER_SIZES:
        if n < 14 + 40:
            raise _TruncatedError
        width, height = _le32(raw, 18, signed=True), abs(_le32(raw, 22, signed=True))
        bits, compression, size_image = _le16(raw, 28), _le32(raw, 30), _le32(raw, 34)
    else:
        raise _MalformedError
    if width <= 0 or height == 0 or bits not in (1, 2, 4, 8, 16, 24, 32):
        raise _MalformedError
    if compression in (0, 3, 6):  # BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS: rows padded to 4 bytes
        end = pixel_offset + ((width * bits + 31) // 32) * 4 * height
    elif compression in (1, 2):  # RLE8, RLE4
        end = pixel_offset + size_image if size_image else file_size
    else:  # JPEG or PNG inside a BMP: Pillow does not decode them
        raise _MalformedError
    # A BITMAPV5HEADER may embed a colour profile after the pixels ("MBED").
    if header_size == 124 and n >= 14 + 124 and raw[14 + 56 : 14 + 60] == b"DEBM":
        end = max(end, 14 + _le32(raw, 14 + 112) + _le32(raw, 14 + 116))
    if end > n:
        raise _TruncatedError
    return _Layout(width=width, height=height, end=end, frames=1)


_LAYOUT_PARSERS = {"JPEG": _jpeg_layout, "PNG": _png_layout, "GIF": _gif_layout, "BMP": _bmp_layout}


# --- checks on the layout ----------------------------------------------------


def _check_pixels(*, width: int, height: int, name: str) -> None:
    if width * height > MAX_PIXELS:
        raise DomainError(
            _(
                "图片“%(name)s”尺寸为 %(w)d×%(h)d 像素（约 %(mp)d 万像素），超过 %(limit)d 万像素上限，"
                "请降低分辨率（扫描时选择 300dpi 即可）后重新上传。"
            )
            % {
                "name": name,
                "w": width,
                "h": height,
                "mp": round(width * height / 10_000),
                "limit": MAX_PIXELS // 10_000,
            },
            code="image_too_many_pixels",
        )


def _check_trailing_data(*, tail: bytes, name: str) -> None:
    # Some scanners and cameras pad files with 0x00 or 0xFF; such padding cannot carry
    # anything. Anything else after the image's end is how polyglots (image + ZIP,
    # HTML, script) are made — refused, although re-encoding would drop it anyway.
    if tail.strip(b"\x00\xff"):
        raise DomainError(
            _(
                "图片“%(name)s”在图像数据之后还附带了 %(n)d 字节的其他数据，不能作为证件资料上传。"
                "如为手机拍摄的“动态照片/实况照片”，请关闭该功能重新拍摄，或用截图、画图工具另存为 jpg 或 png 后上传。"
            )
            % {"name": name, "n": len(tail)},
            code="image_trailing_data",
        )


# --- decoding and re-encoding -------------------------------------------------


def _truncated_error(name: str) -> DomainError:
    return DomainError(
        _("图片“%(name)s”不完整（可能上传中断或文件已损坏），请重新扫描或拍照后上传。") % {"name": name},
        code="image_truncated",
    )


def _corrupt_error(name: str) -> DomainError:
    return DomainError(
        _("图片“%(name)s”已损坏或编码方式不受支持，无法读取，请重新扫描或拍照，或另存为 jpg 或 png 后上传。")
        % {"name": name},
        code="image_corrupt",
    )


_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error, zlib.error)


@contextlib.contextmanager
def _strict_decoding() -> Iterator[None]:
    """Pillow refuses truncated or broken pixel data, whatever the process set.

    WeasyPrint sets `ImageFile.LOAD_TRUNCATED_IMAGES = True` for the whole
    process when it is imported (weasyprint/images.py), and the portal imports
    it for the application form PDF. With it, Pillow silently pads a broken
    image with grey. The flag is a module global, so flip it back only for our
    decode and only one decode at a time.
    """
    with _STRICT_DECODING_LOCK:
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous


_STRICT_DECODING_LOCK = threading.Lock()


def _decode_and_reencode(*, raw: bytes, fmt: str, name: str) -> tuple[bytes, int, int]:
    try:
        with _strict_decoding():
            image = Image.open(io.BytesIO(raw), formats=[fmt])
            _check_pixels(width=image.width, height=image.height, name=name)
            image.load()  # a full decode: truncated or broken pixel data fails here
        return _reencode(image=image, fmt=fmt, name=name)
    except Image.DecompressionBombError:
        raise DomainError(
            _("图片“%(name)s”像素过多，超过 %(limit)d 万像素上限，请降低分辨率后重新上传。")
            % {"name": name, "limit": MAX_PIXELS // 10_000},
            code="image_too_many_pixels",
        ) from None
    except _DECODE_ERRORS as exc:
        if isinstance(exc, OSError) and "truncated" in str(exc):
            raise _truncated_error(name) from None
        raise _corrupt_error(name) from None


def _reencode(*, image: Image.Image, fmt: str, name: str) -> tuple[bytes, int, int]:
    try:
        # Phones store portrait shots as landscape pixels plus an orientation tag;
        # that tag is about to go, so turn the pixels first.
        oriented = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, struct.error):
        oriented = image.copy()  # unreadable EXIF: no orientation to honour
    transparency = oriented.info.get("transparency")
    # Encoders copy some keys from `info` (GIF: comment; PNG: ICC profile; JPEG:
    # comment), so the copy starts with none: EXIF/GPS, XMP, comments, ICC
    # profiles, text chunks all stay behind.
    oriented.info = {}
    params: dict[str, Any] = {}
    if transparency is not None and fmt in ("PNG", "GIF"):
        params["transparency"] = transparency
    if fmt == "JPEG" and isinstance(image, JpegImagePlugin.JpegImageFile):
        # The upload's own quantisation tables and chroma subsampling: the same
        # quality as sent, no visible generation loss, about the same size.
        params["qtables"] = image.quantization
        subsampling = JpegImagePlugin.get_sampling(image)
        if subsampling != -1:
            params["subsampling"] = subsampling
        params["optimize"] = True
    if fmt == "PNG":
        # zlib level 6 made re-encoding ~29× slower than decoding; the size cost of level 3 is small.
        params["compress_level"] = 3
    out = io.BytesIO()
    oriented.save(out, format=fmt, **params)
    cleaned = out.getvalue()
    if fmt == "BMP" and len(cleaned) > MAX_UPLOAD_BYTES:
        # Pillow writes BMPs uncompressed, so a run-length-encoded upload of a few KB
        # could be stored as up to 40 MB. The other formats are re-compressed and stay
        # near the upload's size (a few percent either way), so they are not checked
        # again: a 2.9 MB photo must not be refused for what we did to it.
        raise DomainError(
            _("图片“%(name)s”解压后大小为 %(size)s，超过 3MB（3072KB）上限，请另存为 jpg 或 png 格式后重新上传。")
            % {"name": name, "size": _size_text(len(cleaned))},
            code="image_too_large_decoded",
        )
    return cleaned, oriented.width, oriented.height
