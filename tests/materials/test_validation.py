"""Upload validation: every file is made here with Pillow or by hand, none is committed."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from typing import BinaryIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import ExifTags, Image, ImageChops, ImageFile, ImageStat, PngImagePlugin

from certdesk.core.errors import DomainError
from certdesk.materials.validation import MAX_PIXELS, MAX_UPLOAD_BYTES, ValidatedImage, upload_image_validate

RED = (220, 20, 20)


def picture(*, mode: str = "RGB", size: tuple[int, int] = (64, 48)) -> Image.Image:
    """A gradient with a red top-left corner, so orientation and pixels can be checked."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    image.paste(RED, (0, 0, 8, 8))
    if mode == "P":
        return image.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    return image.convert(mode)


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def jpeg(**params: object) -> bytes:
    return encode(picture(), "JPEG", quality=90, **params)


def png(**params: object) -> bytes:
    return encode(picture(), "PNG", **params)


def gif(**params: object) -> bytes:
    return encode(picture(mode="P"), "GIF", **params)


def bmp() -> bytes:
    return encode(picture(), "BMP")


def refused(data: bytes | io.BytesIO, filename: str) -> DomainError:
    with pytest.raises(DomainError) as caught:
        upload_image_validate(data=data, filename=filename)
    return caught.value


def reopen(result: ValidatedImage) -> Image.Image:
    image = Image.open(io.BytesIO(result.data))
    image.load()
    return image


# --- accepted -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "make", "fmt", "extension", "content_type"),
    [
        ("营业执照.jpg", jpeg, "JPEG", "jpg", "image/jpeg"),
        ("IMG_0001.JPEG", jpeg, "JPEG", "jpg", "image/jpeg"),
        ("scan.bmp", bmp, "BMP", "bmp", "image/bmp"),
        ("scan.gif", gif, "GIF", "gif", "image/gif"),
        ("身份证.png", png, "PNG", "png", "image/png"),
    ],
)
def test_each_allowed_format_is_accepted_and_reencoded(
    filename: str, make: Callable[[], bytes], fmt: str, extension: str, content_type: str
) -> None:
    original = make()

    result = upload_image_validate(data=original, filename=filename)

    assert (result.format, result.extension, result.content_type) == (fmt, extension, content_type)
    assert (result.width, result.height) == (64, 48)
    assert result.sha256 == hashlib.sha256(result.data).hexdigest()
    cleaned = reopen(result)
    assert cleaned.format == fmt
    assert cleaned.size == (64, 48)
    source = Image.open(io.BytesIO(original)).convert("RGB")
    if fmt == "JPEG":  # same quantisation tables: close, not identical
        assert max(ImageStat.Stat(ImageChops.difference(source, cleaned.convert("RGB"))).rms) < 3
    else:  # lossless formats keep every pixel
        assert ImageChops.difference(source, cleaned.convert("RGB")).getbbox() is None


def test_format_is_decided_by_content_not_by_name() -> None:
    result = upload_image_validate(data=png(), filename="photo.jpg")

    assert (result.format, result.extension, result.content_type) == ("PNG", "png", "image/png")


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(io.BytesIO, id="BytesIO"),
        pytest.param(lambda raw: SimpleUploadedFile("scan.png", raw, content_type="image/png"), id="UploadedFile"),
    ],
)
def test_file_objects_are_read_from_the_start(wrap: Callable[[bytes], BinaryIO]) -> None:
    upload = wrap(png())
    upload.read(10)  # something (a view, a virus scanner) already read from it

    result = upload_image_validate(data=upload, filename="scan.png")

    assert result.format == "PNG"


def test_multi_picture_jpeg_from_a_phone_keeps_only_the_primary_image() -> None:
    # Recent phones append an HDR gain map or depth map as a second JPEG declared in an MPF header.
    primary, secondary = picture(), picture().rotate(90)
    raw = encode(primary, "MPO", save_all=True, append_images=[secondary])

    result = upload_image_validate(data=raw, filename="IMG_2001.jpg")

    assert result.format == "JPEG"
    assert b"MPF\x00" not in result.data
    assert result.data.count(b"\xff\xd8") == 1


@pytest.mark.parametrize("padding", [b"\x00" * 64, b"\xff" * 7], ids=["zeros", "0xff"])
def test_padding_after_the_image_is_tolerated_and_dropped(padding: bytes) -> None:
    result = upload_image_validate(data=jpeg() + padding, filename="scan.jpg")

    assert not result.data.endswith(padding)


def test_exactly_3mb_is_accepted_and_one_byte_more_is_not() -> None:
    image = bmp()
    at_limit = image + b"\x00" * (MAX_UPLOAD_BYTES - len(image))

    assert upload_image_validate(data=at_limit, filename="scan.bmp").format == "BMP"
    error = refused(at_limit + b"\x00", "scan.bmp")
    assert error.code == "image_too_large"


def test_gif_transparency_is_kept() -> None:
    raw = gif(transparency=0)

    cleaned = reopen(upload_image_validate(data=raw, filename="seal.gif"))

    assert cleaned.info.get("transparency") == 0


# --- metadata ---------------------------------------------------------------------


def test_jpeg_location_and_other_metadata_are_stripped_and_orientation_applied() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Orientation] = 6  # stored landscape, shown rotated 90° clockwise
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (29.0, 33.0, 47.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (106.0, 33.0, 2.5)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><exif:GPSLatitude>29,33.79N</exif:GPSLatitude></rdf:RDF></x:xmpmeta>'
    raw = jpeg(exif=exif, xmp=xmp, comment=b"secret-comment")
    source = Image.open(io.BytesIO(raw))
    assert source.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the input really carries a location
    assert "xmp" in source.info
    assert "comment" in source.info

    result = upload_image_validate(data=raw, filename="IMG_3001.jpg")

    cleaned = reopen(result)
    assert not cleaned.getexif()
    assert not cleaned.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert {"exif", "xmp", "comment", "icc_profile"}.isdisjoint(cleaned.info)
    for marker in (b"Exif\x00\x00", b"PhoneMaker", b"ns.adobe.com/xap", b"GPSLatitude", b"secret-comment"):
        assert marker not in result.data
    # Turned as the phone showed it: 64x48 stored, 48x64 displayed, red corner now top right.
    assert (result.width, result.height) == (48, 64) == cleaned.size
    assert cleaned.convert("RGB").getpixel((44, 3)) == pytest.approx(RED, abs=40)


def test_png_text_xmp_exif_and_colour_profile_are_stripped() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret-text")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>secret-xmp</x:xmpmeta>")
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    raw = png(pnginfo=info, exif=exif, icc_profile=b"fake-icc-profile-data")

    result = upload_image_validate(data=raw, filename="scan.png")

    for chunk in (b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"iCCP"):
        assert chunk not in result.data
    for marker in (b"secret-text", b"secret-xmp", b"PhoneMaker"):
        assert marker not in result.data


def test_gif_comment_is_stripped() -> None:
    raw = gif(comment=b"secret-comment")
    assert b"secret-comment" in raw

    result = upload_image_validate(data=raw, filename="scan.gif")

    assert b"secret-comment" not in result.data
    assert "comment" not in reopen(result).info


# --- refused ----------------------------------------------------------------------


def elf() -> bytes:
    return b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + struct.pack("<HHI", 2, 0x3E, 1) + b"\x00" * 200


def pe() -> bytes:
    return b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 52 + struct.pack("<I", 64) + b"PE\x00\x00" + b"\x00" * 200


SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(document.cookie)</script><rect width='10' height='10'/></svg>"
)
HTML = b"<!DOCTYPE html><html><body><script>fetch('/api/').then(r => r.text())</script></body></html>"


@pytest.mark.parametrize(
    ("raw", "filename"),
    [
        pytest.param(elf(), "setup.jpg", id="ELF executable named .jpg"),
        pytest.param(pe(), "setup.jpg", id="PE executable named .jpg"),
        pytest.param(SVG, "logo.svg", id="SVG"),
        pytest.param(SVG, "logo.png", id="SVG named .png"),
        pytest.param(HTML, "page.html", id="HTML"),
        pytest.param(HTML, "page.gif", id="HTML named .gif"),
        pytest.param(b"PK\x03\x04" + b"\x00" * 100, "scan.zip", id="ZIP"),
    ],
)
def test_non_images_are_refused_whatever_their_name(raw: bytes, filename: str) -> None:
    error = refused(raw, filename)

    assert error.code == "image_format_unsupported"
    assert error.message == f"文件“{filename}”不是图片：仅支持 jpg、jpeg、bmp、gif、png 格式的图片。"


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF 文档", id="PDF"),
        pytest.param(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC", id="HEIC"),
        pytest.param(encode(picture(), "TIFF"), "TIFF", id="TIFF"),
        pytest.param(encode(picture(), "WEBP"), "WebP", id="WebP"),
    ],
)
def test_other_image_formats_are_named_in_the_refusal(raw: bytes, kind: str) -> None:
    error = refused(raw, "scan.jpg")

    assert error.code == "image_format_unsupported"
    assert kind in error.message
    assert "请转换为 jpg 或 png 后重新上传" in error.message


@pytest.mark.parametrize("raw", [b"", io.BytesIO(b"")], ids=["bytes", "stream"])
def test_empty_file_is_refused(raw: bytes | io.BytesIO) -> None:
    error = refused(raw, "scan.jpg")

    assert error.code == "image_empty"
    assert "空文件" in error.message


def test_oversized_image_is_refused_with_its_size() -> None:
    raw = encode(picture(size=(1100, 1000)), "BMP")  # a real image, 3,300,054 bytes
    assert len(raw) > MAX_UPLOAD_BYTES

    error = refused(raw, "scan.bmp")

    assert error.code == "image_too_large"
    assert error.message == "图片“scan.bmp”大小为 3.2MB，超过 3MB（3072KB）上限，请压缩后重新上传。"


class EndlessStream:
    """An upload that never ends; counts what was read from it."""

    def __init__(self) -> None:
        self.bytes_read = 0

    def read(self, size: int = -1, /) -> bytes:
        assert size >= 0, "must never read without a bound"
        chunk = b"\xff\xd8\xff" if self.bytes_read == 0 else b"\x00"
        chunk = (chunk * size)[:size]
        self.bytes_read += len(chunk)
        return chunk


def test_size_is_checked_reading_at_most_limit_plus_one_bytes() -> None:
    stream = EndlessStream()

    with pytest.raises(DomainError) as caught:
        upload_image_validate(data=stream, filename="endless.jpg")

    assert caught.value.code == "image_too_large"
    assert stream.bytes_read == MAX_UPLOAD_BYTES + 1


def _cut(raw: bytes) -> bytes:
    return raw[: len(raw) * 2 // 3]


@pytest.mark.parametrize(
    ("raw", "filename"),
    [
        pytest.param(_cut(jpeg()), "scan.jpg", id="jpeg"),
        pytest.param(_cut(png()), "scan.png", id="png"),
        pytest.param(_cut(gif()), "scan.gif", id="gif"),
        pytest.param(_cut(bmp()), "scan.bmp", id="bmp"),
        pytest.param(png()[:-12], "scan.png", id="png without IEND"),
        pytest.param(jpeg()[:-2], "scan.jpg", id="jpeg without EOI"),
    ],
)
def test_truncated_images_are_refused(raw: bytes, filename: str) -> None:
    error = refused(raw, filename)

    assert error.code == "image_truncated"
    assert error.message == f"图片“{filename}”不完整（可能上传中断或文件已损坏），请重新扫描或拍照后上传。"


def _png_with_idat(make: Callable[[bytes], bytes]) -> bytes:
    """A PNG whose pixel data is replaced, with a correct length and CRC: a well-formed container."""
    raw = png()
    start = raw.index(b"IDAT") - 4
    length = struct.unpack(">I", raw[start : start + 4])[0]
    data = make(raw[start + 8 : start + 8 + length])
    chunk = struct.pack(">I", len(data)) + b"IDAT" + data + struct.pack(">I", zlib.crc32(b"IDAT" + data))
    return raw[:start] + chunk + raw[start + 12 + length :]


@pytest.mark.parametrize(
    ("make", "code"),
    [
        pytest.param(lambda data: b"\x13" * len(data), "image_corrupt", id="not a zlib stream"),
        pytest.param(lambda data: data[: len(data) // 2], "image_truncated", id="rows missing"),
    ],
)
@pytest.mark.parametrize("load_truncated_images", [False, True], ids=["pillow default", "as weasyprint sets it"])
def test_broken_pixel_data_in_a_well_formed_file_is_refused(
    make: Callable[[bytes], bytes], code: str, load_truncated_images: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # WeasyPrint sets LOAD_TRUNCATED_IMAGES for the whole process on import; validation must not depend on it.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", load_truncated_images)

    error = refused(_png_with_idat(make), "scan.png")

    assert error.code == code
    assert load_truncated_images is ImageFile.LOAD_TRUNCATED_IMAGES  # put back as it was


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("index.html", "<script>alert(1)</script>")
    return out.getvalue()


def _gif_js_polyglot() -> bytes:
    # The classic GIF/JavaScript polyglot: the logical screen width bytes read
    # "/*" so that "GIF89a" is a JavaScript identifier and the image a comment.
    raw = bytearray(gif())
    raw[6:8] = b"/*"
    return bytes(raw) + b"*/=1;alert(document.domain);//"


@pytest.mark.parametrize(
    ("raw", "filename"),
    [
        pytest.param(png() + _zip(), "scan.png", id="PNG + ZIP"),
        pytest.param(png() + HTML, "scan.png", id="PNG + HTML"),
        pytest.param(jpeg() + b"<?php system($_GET['c']); ?>", "scan.jpg", id="JPEG + PHP"),
        pytest.param(jpeg() + _zip(), "scan.jpg", id="JPEG + ZIP (JAR)"),
        pytest.param(gif() + b"\nalert(document.cookie);", "scan.gif", id="GIF + JS"),
        pytest.param(_gif_js_polyglot(), "scan.gif", id="GIF89a/* JS polyglot"),
        pytest.param(bmp() + HTML, "scan.bmp", id="BMP + HTML"),
    ],
)
def test_polyglots_with_data_after_the_image_are_refused(raw: bytes, filename: str) -> None:
    error = refused(raw, filename)

    assert error.code == "image_trailing_data"
    assert "附带了" in error.message


def _png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    # 1-bit pixels, all zero: 400 megapixels in about 50 KB; the scanlines are fed
    # to zlib a row at a time so the test never holds them in memory.
    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _jpeg_declaring(width: int, height: int) -> bytes:
    raw = bytearray(jpeg())
    sof = raw.index(b"\xff\xc0")
    raw[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(raw)


def _gif_declaring(width: int, height: int) -> bytes:
    raw = bytearray(gif())
    raw[6:10] = struct.pack("<HH", width, height)
    return bytes(raw)


@pytest.mark.parametrize(
    ("raw", "filename"),
    [
        pytest.param(_png_bomb(), "bomb.png", id="PNG 20000x20000"),
        pytest.param(_jpeg_declaring(20_000, 20_000), "bomb.jpg", id="JPEG header 20000x20000"),
        pytest.param(_gif_declaring(65_535, 65_535), "bomb.gif", id="GIF screen 65535x65535"),
    ],
)
def test_decompression_bombs_are_refused_from_the_header(raw: bytes, filename: str) -> None:
    assert len(raw) < 100_000

    error = refused(raw, filename)

    assert error.code == "image_too_many_pixels"
    assert "4000 万像素上限" in error.message


def test_pillow_bomb_check_is_set_no_looser_than_ours() -> None:
    assert Image.MAX_IMAGE_PIXELS is not None
    assert Image.MAX_IMAGE_PIXELS <= MAX_PIXELS


def test_the_pixel_limit_is_inclusive() -> None:
    assert 6_324 * 6_324 <= MAX_PIXELS < 6_325 * 6_325

    result = upload_image_validate(data=_png_bomb(6_324, 6_324), filename="a4-600dpi.png")

    assert (result.width, result.height) == (6_324, 6_324)
    assert refused(_png_bomb(6_325, 6_325), "a4-600dpi.png").code == "image_too_many_pixels"


def _animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (16, 16), colour) for colour in ("red", "green", "blue")]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=200, loop=0)


@pytest.mark.parametrize(("fmt", "filename"), [("GIF", "anim.gif"), ("PNG", "anim.png")])
def test_animations_are_refused(fmt: str, filename: str) -> None:
    error = refused(_animated(fmt), filename)

    assert error.code == "image_animated"
    assert "共 3 帧" in error.message


def _rle8_bmp(width: int, height: int) -> bytes:
    """A run-length encoded BMP: a few KB on disk, width*height bytes decoded."""
    runs = b"\xff\x01" * (width // 255) + bytes([width % 255, 1])
    pixels = (runs + b"\x00\x00") * height + b"\x00\x01"  # end of line ... end of bitmap
    palette = b"".join(bytes((i, i, i, 0)) for i in range(256))
    offset = 14 + 40 + len(palette)
    file_header = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    info_header = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    return file_header + info_header + palette + pixels


def test_run_length_bmp_that_would_be_stored_larger_than_3mb_is_refused() -> None:
    raw = _rle8_bmp(4000, 4000)
    assert len(raw) < 200_000

    error = refused(raw, "scan.bmp")

    assert error.code == "image_too_large_decoded"
    assert "另存为 jpg 或 png" in error.message


def test_small_run_length_bmp_is_accepted() -> None:
    result = upload_image_validate(data=_rle8_bmp(300, 200), filename="scan.bmp")

    assert (result.format, result.width, result.height) == ("BMP", 300, 200)


def test_refusal_names_only_the_file_not_its_path() -> None:
    error = refused(elf(), "C:\\Users\\张三\\Desktop\\营业执照.exe")

    assert error.message == "文件“营业执照.exe”不是图片：仅支持 jpg、jpeg、bmp、gif、png 格式的图片。"
