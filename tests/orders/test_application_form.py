"""The 数字证书申请表 PDF: content, layout, the QR code and the rendering path."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import weasyprint.pdf.fonts

from certdesk.core.choices import BusinessType
from certdesk.orders.application_form import (
    OPERATION_LABELS,
    TEMPLATE_DIR,
    ApplicationFormData,
    LocalOnlyURLFetcher,
    application_form_render_html,
    application_form_render_pdf,
)

poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils (pdftotext, pdfinfo)")

SAMPLE = ApplicationFormData(
    order_number="CD20260115000123",
    business_type=BusinessType.RENEW,
    certificate_type_name="机构证书（UKey）",
    years=2,
    org_name="重庆东方示例科技有限公司",
    legal_rep_name="张建国",
    legal_rep_mobile="13500000000",
    agent_name="李小红",
    agent_mobile="13600000001",
    agent_email="lixiaohong@example.com",
    shipping_address="自提",
    org_uscc="91110000600037341L",
    legal_rep_id_number="360426199101010071",
    agent_id_number="11010519491231002X",
    taxpayer_id="91110000600037341L",
    invoice_info="普通电子发票\n抬头：重庆东方示例科技有限公司\n邮箱：lixiaohong@example.com",
    project_region="重庆",
    project_category="公共资源交易",
    project_name="重庆市公共资源交易中心",
)


def sample(**changes: Any) -> ApplicationFormData:
    return dataclasses.replace(SAMPLE, **changes)


def run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=30).stdout


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "form.pdf"
    path.write_bytes(pdf)
    return run("pdftotext", "-layout", str(path), "-")


def pdf_info(pdf: bytes, tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "info.pdf"
    path.write_bytes(pdf)
    lines = run("pdfinfo", str(path)).splitlines()
    return {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in lines)}


@pytest.fixture(scope="module")
def sample_pdf() -> bytes:
    return application_form_render_pdf(data=SAMPLE)


def test_pdf_is_a_pdf(sample_pdf: bytes) -> None:
    assert sample_pdf.startswith(b"%PDF-")
    assert sample_pdf.rstrip().endswith(b"%%EOF")


@poppler
def test_pdf_is_one_a4_page_titled_with_the_order(sample_pdf: bytes, tmp_path: Path) -> None:
    info = pdf_info(sample_pdf, tmp_path)

    assert info["Pages"] == "1"
    assert info["Page size"].startswith("595.276 x 841.89 pts (A4)")
    assert info["Title"] == "数字证书申请表 CD20260115000123"


@poppler
def test_pdf_text_carries_the_form_and_the_order_data(sample_pdf: bytes, tmp_path: Path) -> None:
    text = pdf_text(sample_pdf, tmp_path)

    for expected in (
        "数字证书申请表",
        "以下内容请申请者务必准确如实填写",
        "单位信息",
        "经办人信息",
        "证明资料",
        "证书应用项目",
        "操作类型",
        "证件类型",
        "证件号码",
        "重庆东方示例科技有限公司",
        "张建国",
        "13500000000",
        "李小红",
        "13600000001",
        "lixiaohong@example.com",
        "91110000600037341L",
        "360426199101010071",
        "11010519491231002X",
        "项目名称：重庆市公共资源交易中心",
        "机构证书（UKey）",
        "经办人（签名）",
        "单位公章",
        "以上信息资料真实有效",
        "授权本申请表中经办人全权代表本单位，办理数字证书业务",
        "《数字证书服务协议》、《电子认证业务规则（CPS）》",
    ):
        assert expected in text, expected
    assert text.count("CD20260115000123") >= 2  # beside the QR code and in the footer
    assert "☑证书更新" in text
    assert "□证书申请" in text
    assert text.count("☑") == 1


@poppler
def test_cjk_and_symbol_fonts_are_embedded(sample_pdf: bytes, tmp_path: Path) -> None:
    path = tmp_path / "fonts.pdf"
    path.write_bytes(sample_pdf)
    fonts = run("pdffonts", str(path)).splitlines()[2:]

    assert fonts
    assert any("WenQuanYi-Micro-Hei" in line for line in fonts)
    for line in fonts:  # name type encoding emb sub uni ...
        assert line.split()[-5:-2] == ["yes", "yes", "yes"], line


@poppler
@pytest.mark.skipif(shutil.which("zbarimg") is None or shutil.which("pdftoppm") is None, reason="needs zbarimg")
def test_qr_code_carries_the_order_number(sample_pdf: bytes, tmp_path: Path) -> None:
    (tmp_path / "form.pdf").write_bytes(sample_pdf)
    run("pdftoppm", "-r", "200", "-png", "-singlefile", str(tmp_path / "form.pdf"), str(tmp_path / "page"))

    decoded = run("zbarimg", "--quiet", "--raw", str(tmp_path / "page.png"))

    assert decoded.strip() == "CD20260115000123"


def test_qr_code_is_embedded_not_fetched() -> None:
    html = application_form_render_html(data=SAMPLE)

    sources = re.findall(r'<img src="([^"]+)"', html)
    assert len(sources) == 1
    assert sources[0].startswith("data:image/svg+xml")
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "").replace("http%3A%2F%2Fwww.w3.org", "")


TICKED = re.compile(r"<span class=\"box\">☑</span>([^<]+)")


@pytest.mark.parametrize(
    ("business_type", "ticked_label"),
    [
        (BusinessType.NEW, "证书申请"),
        (BusinessType.RENEW, "证书更新"),
        (BusinessType.CHANGE, "证书信息变更（请详细说明）："),
        (BusinessType.REISSUE, "证书补办"),
        (BusinessType.UNLOCK, "PIN码解锁"),
        (BusinessType.REVOKE, "证书注销"),
        (BusinessType.REDISPATCH, "其它：改派"),
    ],
)
def test_each_business_type_ticks_exactly_its_own_box(business_type: str, ticked_label: str) -> None:
    html = application_form_render_html(data=sample(business_type=business_type))

    assert TICKED.findall(html) == [ticked_label]
    assert html.count("☑") == 1
    assert html.count("□") == len(OPERATION_LABELS) - 1 == 6
    if business_type != BusinessType.REDISPATCH:
        assert "改派" not in html


def test_every_business_type_has_a_box() -> None:
    assert set(OPERATION_LABELS) == set(BusinessType.values)


def test_change_details_are_printed_next_to_their_box() -> None:
    html = application_form_render_html(
        data=sample(business_type=BusinessType.CHANGE, change_details="法定代表人由张建国变更为王强")
    )

    assert re.search(
        r"☑</span>证书信息变更（请详细说明）：<span class=\"fill\">法定代表人由张建国变更为王强</span>", html
    )


def test_empty_optional_values_print_a_slash() -> None:
    html = application_form_render_html(
        data=sample(office_phone="", website="", agent_wechat="", social_security_no="")
    )

    for label in ("办公电话", "企业网站", "微信号", "单位社保号（非社保项目无需填写）"):
        assert re.search(rf"<th[^>]*>{re.escape(label)}</th>\s*<td[^>]*>/</td>", html), label


def test_customer_text_is_escaped() -> None:
    html = application_form_render_html(data=sample(org_name='<img src="http://127.0.0.1:9/track.png">有限公司'))

    assert "&lt;img src=&quot;http://127.0.0.1:9/track.png&quot;&gt;有限公司" in html
    assert '<img src="http://127.0.0.1:9' not in html


def test_unknown_business_type_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown business type"):
        sample(business_type="refund")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/track.png",
        "https://example.com/font.woff2",
        "ftp://example.com/x.css",
        "file:///etc/passwd",
        (TEMPLATE_DIR / ".." / ".." / ".." / ".." / "config" / "settings.py").as_uri(),
    ],
)
def test_fetcher_refuses_network_and_files_outside_the_template_dir(url: str) -> None:
    with pytest.raises(ValueError, match="may not load"):
        LocalOnlyURLFetcher().fetch(url)


def test_fetcher_serves_data_uris_and_the_template_dir() -> None:
    fetcher = LocalOnlyURLFetcher()

    with closing(fetcher.fetch("data:text/plain;charset=utf-8,ok")) as response:
        assert response.read() == b"ok"
    with closing(fetcher.fetch((TEMPLATE_DIR / "application_form.css").as_uri())) as response:
        assert b"@page" in response.read()


@poppler
def test_very_long_values_still_fit_one_page(tmp_path: Path) -> None:
    # Every text at the order form's maximum field length.
    data = sample(
        business_type=BusinessType.CHANGE,
        org_name="重庆" * 50,
        legal_rep_name="张" * 50,
        agent_name="李" * 50,
        office_phone="023-12345678-1234",
        website="https://www." + "a" * 184 + ".com",
        agent_email="a" * 242 + "@example.com",
        agent_wechat="w" * 50,
        shipping_address="重庆市渝中区" * 33 + "10号",
        social_security_no="1" * 30,
        invoice_info="增值税专用发票\n抬头："
        + "重庆" * 50
        + "\n地址："
        + "重庆市渝中区" * 33
        + "\n开户银行："
        + "中国工商银行" * 16
        + "\n账号："
        + "6" * 40,
        project_name="重庆市公共资源交易中心" * 9,
        change_details="单位名称变更为" + "四川" * 50,
    )

    pdf = application_form_render_pdf(data=data)

    assert pdf_info(pdf, tmp_path)["Pages"] == "1"
    assert "91110000600037341L" in pdf_text(pdf, tmp_path)


def test_fonts_are_subset_with_harfbuzz_not_fonttools(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fast path: without libharfbuzz-subset WeasyPrint falls back to fontTools,
    # and a CJK font then costs 7 s a PDF instead of about 0.1 s.
    calls: list[str] = []
    font_class = weasyprint.pdf.fonts.Font
    real_harfbuzz = font_class._harfbuzz_subset

    def harfbuzz(self: Any, *args: Any) -> Any:
        calls.append("harfbuzz")
        return real_harfbuzz(self, *args)

    def fonttools(self: Any, *args: Any) -> None:
        calls.append("fonttools")
        raise AssertionError("WeasyPrint fell back to fontTools subsetting: install libharfbuzz-subset0")

    monkeypatch.setattr(font_class, "_harfbuzz_subset", harfbuzz)
    monkeypatch.setattr(font_class, "_fonttools_subset", fonttools)

    application_form_render_pdf(data=SAMPLE)

    assert calls
    assert set(calls) == {"harfbuzz"}
