"""The agent API's bodies, as pydantic models: requests are validated with them, responses are
built from them, and the OpenAPI document (`openapi.py`) is generated from them."""

from __future__ import annotations

import base64
import binascii
import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from certdesk.pki.serials import serial_hex

Role = Literal["sign", "enc"]
Operation = Literal["write", "download", "unlock"]

PairingCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9]{4}[- ]?[A-Za-z0-9]{4}$"),
    Field(description="订单页面显示的一次性配对码，如 ABCD-EFGH（不区分大小写）", examples=["ABCD-EFGH"]),
]
KeySn = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9]{6,32}$"),
    Field(description="插入的 USB Key 的序列号", examples=["5500000001"]),
]
Serial = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[0-9A-Fa-f]{1,64}$"),
    # The CA's spelling (upper case, even length), whatever the agent sends.
    AfterValidator(lambda value: serial_hex(int(value, 16))),
    Field(description="证书序列号（十六进制）"),
]
Pem = Annotated[str, StringConstraints(min_length=1, max_length=16_000)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SessionOpenIn(_In):
    pairing_code: PairingCode
    key_sn: KeySn


def _one_of(schema: dict[str, Any]) -> None:
    # The "absent" defaults below are not values a client may send: keep them out of the schema.
    for name in ("csr_pem", "public_key_pem", "pop_signature"):
        schema["properties"][name].pop("default", None)
    schema["oneOf"] = [
        {"required": ["csr_pem"], "not": {"required": ["public_key_pem"]}},
        {"required": ["public_key_pem", "pop_signature"], "not": {"required": ["csr_pem"]}},
    ]


class CertificateIn(_In):
    """Either `csr_pem` (a PKCS#10 request signed by the pair itself), or, for the encryption pair,
    which cannot sign, `public_key_pem` plus `pop_signature`: the key's signing key's signature
    over the proof message (docs/api.md), made after the signing certificate was issued."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=lambda schema: _one_of(schema))

    role: Role
    # Absent means "not this way"; the defaults are not validated, an explicit "" or null is refused.
    csr_pem: Pem = Field(default="", description="PEM 格式的 PKCS#10 证书请求")
    public_key_pem: Pem = Field(default="", description="加密密钥对的公钥（PEM，SubjectPublicKeyInfo）")
    pop_signature: str = Field(
        default="",
        min_length=1,
        max_length=2048,
        # In the document too, so a client (and schemathesis) knows what the parser accepts.
        pattern=r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
        description="签名密钥对持有证明消息的签名（DER，Base64）",
    )

    @field_validator("pop_signature")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("pop_signature must be base64") from None
        return value

    @model_validator(mode="after")
    def _one_way(self) -> CertificateIn:
        if bool(self.csr_pem) == bool(self.public_key_pem):
            raise ValueError("give csr_pem or public_key_pem, not both and not neither")
        if self.public_key_pem and not self.pop_signature:
            raise ValueError("public_key_pem needs pop_signature")
        return self

    @property
    def pop_signature_bytes(self) -> bytes:
        return base64.b64decode(self.pop_signature)


class ConfirmIn(_In):
    serials: list[Serial] = Field(min_length=1, max_length=4, description="已写入 Key 的证书序列号")


class UnlockFinishIn(_In):
    ok: bool = Field(description="Key 上的解锁是否成功")
    error: str = Field(default="", max_length=500, description="失败时的错误说明（转人工远程协助）")


class OrderOut(BaseModel):
    number: str
    business_type: Literal["new", "renew", "change", "reissue", "unlock", "revoke", "redispatch"]
    business_type_label: str


class SubjectOut(BaseModel):
    organisation_name: str
    uscc: str
    province: str
    city: str


class CertificateProgressOut(BaseModel):
    role: Role
    status: Literal["issued", "installed"] = Field(
        description="issued: 已签发，尚未确认写入；installed: 已确认写入 Key"
    )
    serial: str
    spki_sha256: str = Field(description="证书公钥（SubjectPublicKeyInfo DER）的 SHA-256，十六进制")
    not_after: datetime.datetime


class ProgressOut(BaseModel):
    certificates: list[CertificateProgressOut]
    all_installed: bool = Field(description="订单要求的每种证书都已确认写入 Key")
    unlock_pending: bool = Field(description="管理员 PIN 已发放，正在等待解锁结果")


class SessionOut(BaseModel):
    expires_at: datetime.datetime
    operation: Operation
    operation_pending: bool = Field(description="订单仍在等待本次操作（否则已完成或订单状态已变）")
    order: OrderOut
    order_status: str
    order_status_label: str
    subject: SubjectOut
    roles: list[Role] = Field(description="须写入 Key 的证书（解锁时为空）")
    key_algorithm: Literal["ec-p256"]
    renewal_of: str | None = Field(description="本次下载所替换的原证书序列号（更新、变更），否则为 null")
    key_sn: str
    progress: ProgressOut


class SessionCreatedOut(SessionOut):
    token: str = Field(description="会话令牌：之后每个请求以 Authorization: Bearer <token> 携带")


class CertificateOut(BaseModel):
    serial: str
    role: Role
    certificate_pem: str
    chain_pem: str = Field(description="签发 CA 证书，再到根 CA 证书（PEM）")
    not_before: datetime.datetime
    not_after: datetime.datetime


class OrderStatusOut(BaseModel):
    order_status: str
    order_status_label: str


class UnlockStartOut(BaseModel):
    so_pin: str = Field(description="Key 当前的管理员 PIN（只发放一次）")
    new_so_pin: str = Field(description="解锁时须设置到 Key 上的新管理员 PIN")


class FieldErrorOut(BaseModel):
    field: str
    problem: str


class ErrorOut(BaseModel):
    code: str = Field(description="稳定的机器可读错误码")
    message: str = Field(description="给人看的中文说明")
    errors: list[FieldErrorOut] | None = Field(default=None, description="请求内容逐项的问题（仅 400）")


REQUEST_MODELS: tuple[type[BaseModel], ...] = (SessionOpenIn, CertificateIn, ConfirmIn, UnlockFinishIn)
RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    SessionOut,
    SessionCreatedOut,
    CertificateOut,
    OrderStatusOut,
    UnlockStartOut,
    ErrorOut,
)
