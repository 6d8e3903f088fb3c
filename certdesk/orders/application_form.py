"""The 数字证书申请表 (application form) an order prints, signs, stamps and uploads.

Pure rendering: `ApplicationFormData` holds plain values (the caller reads them
from the order), `application_form_render_html` fills the template and
`application_form_render_pdf` turns it into a one-page A4 PDF with WeasyPrint.
The layout follows the production manual's form. A QR code with the order
number sits in the top right corner so an operator can match a scanned paper
form to its order.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import segno
from django.template.loader import render_to_string
from weasyprint import HTML
from weasyprint.urls import URLFetcher

from certdesk.core.choices import BusinessType

TEMPLATE_NAME = "orders/application_form.html"
TEMPLATE_DIR = (Path(__file__).resolve().parent / "templates" / "orders").resolve()

DEFAULT_CA_NAME = "东方中讯数字证书认证有限公司"
DEFAULT_CA_WEBSITE = "https://www.ezca.org"


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationFormData:
    """Everything the form prints. Optional values left empty print as "/", as on the manual's sample."""

    order_number: str
    business_type: str  # a BusinessType value: new, renew, change, reissue, unlock, revoke, redispatch
    certificate_type_name: str
    years: int
    # 单位信息
    org_name: str  # 单位名称
    legal_rep_name: str  # 企业法人代表
    legal_rep_mobile: str  # 联系电话
    office_phone: str = ""  # 办公电话
    website: str = ""  # 企业网站
    # 经办人信息
    agent_name: str
    agent_mobile: str  # 手机号码
    agent_email: str
    agent_wechat: str = ""  # 微信号
    shipping_address: str  # 邮寄地址; "自提" for self-pickup
    # 证明资料
    org_uscc: str  # 营业执照副本
    legal_rep_id_number: str  # 法人代表身份证（护照）
    agent_id_number: str  # 申请人（联系人）身份证
    social_security_no: str = ""  # 单位社保号 (only social-security projects)
    taxpayer_id: str  # 纳税人识别号或统一社会信用代码
    invoice_info: str  # 发票信息, may span lines
    # 证书应用项目
    project_region: str  # 区域
    project_category: str  # 类别
    project_name: str  # 项目名称
    change_details: str = ""  # what changes, for 证书信息变更（请详细说明）
    ca_name: str = DEFAULT_CA_NAME
    ca_website: str = DEFAULT_CA_WEBSITE

    def __post_init__(self) -> None:
        if self.business_type not in BusinessType.values:
            raise ValueError(f"unknown business type {self.business_type!r}")


@dataclass(frozen=True, slots=True)
class _Operation:
    business_type: str
    label: str


# The manual's 操作类型 boxes, in its order. 证书注销 is not on the manual's form
# (its revocations went through the counter); 改派 has no box of its own and is
# ticked as 其它.
_OPERATION_ROWS: tuple[tuple[_Operation, ...], ...] = (
    (_Operation(BusinessType.NEW, "证书申请"), _Operation(BusinessType.RENEW, "证书更新")),
    (
        _Operation(BusinessType.REISSUE, "证书补办"),
        _Operation(BusinessType.UNLOCK, "PIN码解锁"),
        _Operation(BusinessType.REVOKE, "证书注销"),
        _Operation(BusinessType.REDISPATCH, "其它"),
    ),
    (_Operation(BusinessType.CHANGE, "证书信息变更（请详细说明）"),),
)
OPERATION_LABELS: dict[str, str] = {op.business_type: op.label for row in _OPERATION_ROWS for op in row}


Density = Literal["normal", "compact", "tight"]
# Tried in turn until the form fits one page: the customer uploads one image of it.
_DENSITIES: tuple[Density, ...] = ("normal", "compact", "tight")


def application_form_render_html(*, data: ApplicationFormData, density: Density = "normal") -> str:
    """The form as a self-contained HTML page (inline CSS, QR as a data URI).

    `density` shrinks type and spacing for unusually long values (the PDF picks it).
    """
    rows = [
        [
            {
                "label": op.label,
                "ticked": op.business_type == data.business_type,
                # 其它 says what the "other" operation is.
                "note": "改派" if op.business_type == BusinessType.REDISPATCH == data.business_type else "",
                "details": data.change_details if op.business_type == BusinessType.CHANGE else "",
                "fill_line": op.business_type == BusinessType.CHANGE,
            }
            for op in row
        ]
        for row in _OPERATION_ROWS
    ]
    context: dict[str, Any] = {
        "form": data,
        "operation_rows": rows,
        "qr_data_uri": _qr_data_uri(data.order_number),
        "density": density,
    }
    return render_to_string(TEMPLATE_NAME, context)


def application_form_render_pdf(*, data: ApplicationFormData) -> bytes:
    """One A4 page, fonts embedded (subset), nothing fetched from the network.

    Typical data fits at normal density in one layout pass (about 0.1 s); only
    very long names, addresses or invoice details cost a second or third pass.
    """
    for density in _DENSITIES:
        html = application_form_render_html(data=data, density=density)
        document = HTML(string=html, base_url=TEMPLATE_DIR.as_uri() + "/", url_fetcher=LocalOnlyURLFetcher()).render()
        if len(document.pages) == 1:
            break
    # Past the tightest density (values beyond the order form's field lengths) the form runs on; still printable.
    pdf: bytes = document.write_pdf()
    return pdf


def _qr_data_uri(order_number: str) -> str:
    # Vector, so it prints sharp at any size. Error level at least M (segno raises it
    # when that costs no size) to survive a stamp's edge or a crease; the standard
    # four-module quiet zone.
    qr = segno.make_qr(order_number, error="m")
    uri: str = qr.svg_data_uri(scale=4, border=4)
    return uri


class LocalOnlyURLFetcher(URLFetcher):
    """Data URIs and files beside the template only: customer text must never make the renderer fetch anything."""

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> Any:
        scheme = url.split(":", 1)[0].lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme == "file":
            path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path)).resolve()
            if path.is_relative_to(TEMPLATE_DIR):
                return super().fetch(url, headers)
        raise ValueError(f"the application form may not load {url}")
