"""Every upload attack in one place (tests/security/corpus.py: the inputs of tests/materials, read
from their parametrize lists or built with their builders, plus the new cases of #9), each run
twice: through the validator, and through the customer's upload view over HTTP.

A refused file: the right refusal code, a message that names only the file's base name, nothing
stored, the other slots untouched, no 500. An accepted one (hostile names, hostile metadata): the
stored copy is a re-encoded image under a random name inside the media folder, with nothing of the
hostile part left in it, served as an image with nosniff.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils.html import escape
from PIL import Image
from pytest_django.fixtures import Settings

from certdesk.core.errors import DomainError
from certdesk.materials.models import MaterialUpload
from certdesk.materials.validation import upload_image_validate
from certdesk.orders.models import Order
from tests.security.corpus import ANY_REFUSAL, UploadCase, upload_corpus

pytestmark = pytest.mark.django_db

CORPUS = upload_corpus()
PARAMS = [pytest.param(case, id=case.id) for case in CORPUS]
STORED_NAME = re.compile(r"materials/[0-9a-f]{4}/[A-Za-z0-9_-]{32}\.(jpg|png|gif|bmp)")


def test_the_corpus_gathers_the_earlier_suites_and_the_new_cases() -> None:
    origins = {case.origin for case in CORPUS}
    assert any("tests/materials/test_validation.py" in origin for origin in origins)
    assert any("tests/materials/test_uploads.py" in origin for origin in origins)
    new = [case.id for case in CORPUS if case.origin.startswith("new")]
    for needle in ("EXIF", "iTXt", "negative height", "logical screen", "ZIP bomb", "../../x.png", "CON.png"):
        assert any(needle in case_id for case_id in new), needle
    assert len(CORPUS) >= 50


@pytest.mark.parametrize("case", PARAMS)
def test_validator(case: UploadCase) -> None:
    if case.refused is None:
        result = upload_image_validate(data=case.raw, filename=case.filename)
        for marker in case.must_not_survive:
            assert marker not in result.data, marker
        if case.expected_size:
            assert (result.width, result.height) == case.expected_size
        Image.open(io.BytesIO(result.data)).load()  # a plain, decodable image
        return
    with pytest.raises(DomainError) as caught:
        upload_image_validate(data=case.raw, filename=case.filename)
    error = caught.value
    if case.refused is not ANY_REFUSAL:
        assert error.code in case.refused, (error.code, error.message)
    assert case.message_contains in error.message
    named = re.findall(r"“([^”]*)”", error.message)[:1]  # the file as the message names it
    assert all("/" not in name and "\\" not in name for name in named), error.message  # its name, never a path


def _post(client: Client, order: Order, kind: str, name: str, data: bytes) -> tuple[int, str]:
    file = SimpleUploadedFile(name, data, content_type="image/png")
    response = client.post(
        reverse("materials:upload", args=[order.number, kind]), {"file": file}, HTTP_HX_REQUEST="true"
    )
    return response.status_code, response.content.decode()


@pytest.mark.parametrize("case", PARAMS)
def test_upload_view(
    case: UploadCase,
    customer_client: Client,
    draft_order: Order,
    image_bytes: Callable[..., bytes],
    settings: Settings,
    tmp_path: Path,
) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    status, _ = _post(customer_client, draft_order, "agent_id", "agent.png", image_bytes("PNG"))
    assert status == 200
    kept = MaterialUpload.objects.get(order=draft_order, kind__code="agent_id")

    status, fragment = _post(customer_client, draft_order, "business_licence", case.filename, case.raw)

    assert status == 200, fragment[:500]
    assert MaterialUpload.objects.get(pk=kept.pk).sha256 == kept.sha256  # the other slot is untouched
    stored = MaterialUpload.objects.filter(order=draft_order, kind__code="business_licence").first()
    if case.refused is not None:
        assert 'role="alert"' in fragment
        assert stored is None
        if case.message_contains:
            assert escape(case.message_contains) in fragment or case.message_contains in fragment
        return
    assert stored is not None, fragment[:500]
    media = Path(settings.MEDIA_ROOT).resolve()
    path = Path(stored.file.path).resolve()
    assert path.is_relative_to(media / "materials"), path
    # materials/<4 hex>/<32 random url-safe characters>.<extension from the decoded format>: nothing
    # of the uploaded name (../, CON, NUL, ::$DATA, U+202E…) reaches the disk.
    assert STORED_NAME.fullmatch(stored.file.name), stored.file.name
    assert "/" not in stored.original_name and "\\" not in stored.original_name
    assert stored.original_name.isprintable()
    data = path.read_bytes()
    for marker in case.must_not_survive:
        assert marker not in data, marker
    served = customer_client.get(reverse("materials:file", args=[draft_order.number, "business_licence"]))
    assert served["Content-Type"] == stored.content_type
    assert served["X-Content-Type-Options"] == "nosniff"
    assert b"".join(served.streaming_content) == data  # type: ignore[attr-defined]
