"""Resident ID numbers masked on pages (`500103********0017`), revealed to a reviewer only on request
and audited; ID and mobile numbers masked in every log record written through the configured
logging. The application-form PDF is the customer's own document and keeps the full numbers."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from certdesk.accounts.models import User
from certdesk.accounts.roles import ROLE_ADMIN, ROLE_ISSUER, ROLE_SUPPORT
from certdesk.audit.models import AuditRecord
from certdesk.core.logging import PiiRedactingFilter, mask_pii_text
from certdesk.core.validators import mask_resident_id
from certdesk.orders.models import Order, OrderEvent
from tests.factories import VALID_INFO

# The authorisation matrix's route table (its `objects` and `visitors` fixtures come through conftest):
# the sweep below walks the same map.
from tests.security.test_authz_matrix import OWNER, RULES, STAFF_PAGES, _url

pytestmark = pytest.mark.django_db

LEGAL_REP_ID = VALID_INFO["legal_rep_id_number"]  # 360426199101010071
AGENT_ID = VALID_INFO["agent_id_number"]  # 11010519491231002X
FULL_NUMBERS = (LEGAL_REP_ID, AGENT_ID)


def _text(response: Any) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


# --- the staff review page ---------------------------------------------------------------------------


@pytest.fixture
def reviewer_client(reviewer: User, staff_client_for: Callable[[User], Client]) -> Client:
    return staff_client_for(reviewer)


def _reveals() -> list[AuditRecord]:
    return list(AuditRecord.objects.filter(action="pii.revealed").order_by("seq"))


def test_review_page_shows_id_numbers_masked_with_a_reveal_button(
    reviewer_client: Client, submitted_order: Order
) -> None:
    page = reviewer_client.get(reverse("review:order", args=[submitted_order.number])).content.decode()

    assert "360426********0071" in page and "110105********002X" in page
    assert mask_resident_id(LEGAL_REP_ID) == "360426********0071"
    for number in FULL_NUMBERS:
        assert number not in page
    assert page.count("显示完整号码") == 2
    assert 'name="reveal" value="legal_rep_id_number"' in page
    assert _reveals() == []  # looking at the page reveals nothing


def test_reveal_over_htmx_returns_the_full_number_once_and_audits_it(
    reviewer_client: Client, reviewer: User, submitted_order: Order
) -> None:
    url = reverse("review:order", args=[submitted_order.number])

    response = reviewer_client.post(url, {"reveal": "agent_id_number"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    fragment = response.content.decode()
    assert AGENT_ID in fragment and LEGAL_REP_ID not in fragment  # only the number asked for
    assert 'id="pii-agent_id_number"' in fragment and "显示完整号码" not in fragment
    assert "no-store" in response["Cache-Control"]
    (record,) = _reveals()
    assert (record.actor, record.object_type, record.object_id) == (reviewer.mobile, "order", submitted_order.number)
    assert record.data == {"fields": ["agent_id_number"], "via": "review_page"}
    assert record.ip == "127.0.0.1"
    assert AGENT_ID not in str(record.data)  # the audit says which number was seen, not the number


def test_reveal_without_javascript_renders_the_page_with_that_number_only(
    reviewer_client: Client, submitted_order: Order
) -> None:
    response = reviewer_client.post(
        reverse("review:order", args=[submitted_order.number]), {"reveal": "legal_rep_id_number"}
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert LEGAL_REP_ID in page and AGENT_ID not in page and "110105********002X" in page
    assert "no-store" in response["Cache-Control"]
    assert len(_reveals()) == 1


def test_reveal_of_anything_else_is_refused_and_not_audited(reviewer_client: Client, submitted_order: Order) -> None:
    url = reverse("review:order", args=[submitted_order.number])
    for field in ("", "legal_rep_mobile", "password", "agent_id_number "):
        assert reviewer_client.post(url, {"reveal": field}).status_code == 400
    assert _reveals() == []


def test_only_reviewers_can_reveal(
    submitted_order: Order,
    customer_client: Client,
    make_staff: Callable[[str, str], User],
    staff_client_for: Callable[[User], Client],
) -> None:
    url = reverse("review:order", args=[submitted_order.number])
    data = {"reveal": "legal_rep_id_number"}
    anonymous = Client().post(url, data)
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    assert customer_client.post(url, data).status_code == 404
    for mobile, role in (("13900000081", ROLE_ISSUER), ("13900000082", ROLE_SUPPORT)):
        response = staff_client_for(make_staff(mobile, role)).post(url, data)
        assert response.status_code == 404
        assert LEGAL_REP_ID not in response.content.decode()
    # A staff member who signed in with the password but not the TOTP code is sent to that step.
    half_signed_in = Client()
    half_signed_in.force_login(make_staff("13900000083", ROLE_ADMIN))
    response = half_signed_in.post(url, data)
    assert response.status_code == 302 and reverse("staff_otp") in response["Location"]
    assert _reveals() == []


def test_staff_opening_the_application_form_pdf_is_audited_as_a_reveal(
    reviewer_client: Client, reviewer: User, submitted_order: Order
) -> None:
    response = reviewer_client.get(reverse("review:form_pdf", args=[submitted_order.number]))

    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    (record,) = _reveals()
    assert record.actor == reviewer.mobile
    assert record.data == {"fields": ["legal_rep_id_number", "agent_id_number"], "via": "application_form_pdf"}


# --- every page of the authorisation matrix -----------------------------------------------------------

# Where the full number is shown on purpose (docs/security.md):
# - the customer's own application form PDF;
# - the 录入信息 form while the order can still be edited: the customer typed the number into it
#   and edits it there (after submission the page is not reachable; it redirects to the order).
FULL_NUMBER_ALLOWED = {"orders:form_pdf", "review:form_pdf", "orders:info"}


def test_no_page_in_the_route_map_shows_a_full_id_number(objects: dict[str, Any], visitors: dict[str, Client]) -> None:
    swept = 0
    for name, policy in RULES.items():
        if policy.method != "get" or name in FULL_NUMBER_ALLOWED:
            continue
        url = _url(name, objects[policy.target])
        for who in policy.allowed:
            response = visitors[who].get(url, follow=True)
            text = _text(response)
            for number in FULL_NUMBERS:
                assert number not in text, (who, name, number)
            swept += 1
    for name, allowed in STAFF_PAGES.items():
        for who in allowed:
            text = _text(visitors[who].get(reverse(name)))
            assert not any(number in text for number in FULL_NUMBERS), (who, name)
            swept += 1
    for name in ("orders:list", "notifications:message_list", "invoices:list", "portal:home"):
        assert not any(number in _text(visitors[OWNER].get(reverse(name))) for number in FULL_NUMBERS), name
    assert swept >= 30


def test_the_edit_form_is_the_only_customer_page_with_the_full_number_and_only_while_editable(
    customer_client: Client, complete_order: Order, customer: User
) -> None:
    from certdesk.orders.services import order_submit

    info = reverse("orders:info", args=[complete_order.number])
    assert LEGAL_REP_ID in customer_client.get(info).content.decode()  # the customer's own input, being edited
    order_submit(order=complete_order, actor=customer)
    after = customer_client.get(info, follow=True)
    assert after.redirect_chain  # no longer editable: sent to the order page
    assert not any(number in after.content.decode() for number in FULL_NUMBERS)


def test_admin_lists_audit_records_and_events_carry_no_id_numbers(
    submitted_order: Order, make_staff: Callable[[str, str], User], staff_client_for: Callable[[User], Client]
) -> None:
    superuser = make_staff("13900000084", ROLE_ADMIN)
    User.objects.filter(pk=superuser.pk).update(is_superuser=True)
    client = staff_client_for(User.objects.get(pk=superuser.pk))
    pages = 0
    for model in admin.site._registry:
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        response = client.get(url)
        assert response.status_code == 200, url
        assert not any(number in _text(response) for number in FULL_NUMBERS), url
        pages += 1
    assert pages >= 10
    # Nothing stored beside the sealed columns carries them either.
    stored = " ".join(str(data) for data in AuditRecord.objects.values_list("data", flat=True))
    stored += " ".join(str(data) + note for data, note in OrderEvent.objects.values_list("data", "note"))
    assert not any(number in stored for number in FULL_NUMBERS)


def test_the_agent_api_session_carries_no_id_numbers(
    file_ca: Any, paid_order: Order, stock_key: Any, write_code: str
) -> None:
    from certdesk.api.openapi import PREFIX

    client = Client()
    opened = client.post(
        f"{PREFIX}/sessions", {"pairing_code": write_code, "key_sn": stock_key.sn}, content_type="application/json"
    )
    token = opened.json()["token"]
    session = client.get(f"{PREFIX}/session", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert session.status_code == 200
    assert not any(number in opened.content.decode() + session.content.decode() for number in FULL_NUMBERS)


# --- logs ---------------------------------------------------------------------------------------------


@pytest.fixture
def configured_output() -> Iterator[io.StringIO]:
    """What the handlers configured from settings.LOGGING write, captured in memory."""
    root = logging.getLogger()
    handlers = [h for h in root.handlers if any(isinstance(f, PiiRedactingFilter) for f in h.filters)]
    assert handlers, "the PII filter is not on the root logger's handlers (settings.LOGGING)"
    output = io.StringIO()
    previous = [h.setStream(output) for h in handlers if isinstance(h, logging.StreamHandler)]
    try:
        yield output
    finally:
        for handler, stream in zip(handlers, previous, strict=True):
            if stream is not None:
                handler.setStream(stream)  # type: ignore[attr-defined]


def test_settings_put_the_filter_on_every_handler() -> None:
    config: dict[str, Any] = settings.LOGGING
    assert config["filters"]["pii"]["()"] == "certdesk.core.logging.PiiRedactingFilter"
    for name, handler in config["handlers"].items():
        assert "pii" in handler.get("filters", []), name


def test_log_records_are_masked_through_the_django_logging_configuration(configured_output: io.StringIO) -> None:
    logger = logging.getLogger("certdesk.orders.services")  # any project logger; propagates to root
    logger.warning("order for %s, agent %s, mobile %s / +86 13912345678", LEGAL_REP_ID, AGENT_ID, "13812345678")
    try:
        raise ValueError(f"身份证号码 {LEGAL_REP_ID} 校验失败，联系 13812345678")
    except ValueError:
        logging.getLogger("django.request").exception("request failed for 13700001111")

    written = configured_output.getvalue()
    assert "360426********0071" in written and "110105********002X" in written
    assert "138****5678" in written and "+86 139****5678" in written and "137****1111" in written
    assert "Traceback" in written and "ValueError" in written  # the traceback is kept, masked
    for secret in (LEGAL_REP_ID, AGENT_ID, "13812345678", "13912345678", "13700001111", "12345678"):
        assert secret not in written, secret


def test_the_console_sms_backend_line_is_masked(configured_output: io.StringIO) -> None:
    from certdesk.notifications.channels.sms import ConsoleSmsBackend

    ConsoleSmsBackend().send(mobile="13812345678", text="您的验证码是 123456", template="", params={})

    written = configured_output.getvalue()
    assert "SMS to 138****5678: 您的验证码是 123456" in written  # the demo still shows the code
    assert "13812345678" not in written


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("360426199101010071", "360426********0071"),
        ("id=11010519491231002x;", "id=110105********002x;"),
        ("13812345678", "138****5678"),
        ("+8613812345678", "+86138****5678"),
        ("0086-13812345678", "0086-138****5678"),
        # Not personal data: left alone.
        ("XB2611286290951", "XB2611286290951"),  # order number
        ("XB2611286290951P01", "XB2611286290951P01"),  # merchant order number
        ("4200000000000000000000000001", "4200000000000000000000000001"),  # WeChat transaction id
        ("5FCA0123456789012345678AB", "5FCA0123456789012345678AB"),  # certificate serial (hex)
        ("1767225600123", "1767225600123"),  # a timestamp in milliseconds
        ("12345678901", "12345678901"),  # 11 digits that are no mobile number
        ("金额 70000 分", "金额 70000 分"),
    ],
)
def test_mask_pii_text(text: str, masked: str) -> None:
    assert mask_pii_text(text) == masked
