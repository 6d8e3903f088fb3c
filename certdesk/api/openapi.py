"""The agent API's OpenAPI 3.1 document, served at /api/agent/v1/openapi.json.

Bodies come from the pydantic models in `schemas.py` (the ones the handlers validate and answer
with); routes, statuses and security are written out here. tests/api checks the document against
the OpenAPI 3.1 meta-schema and every real response against it.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic.json_schema import models_json_schema

from certdesk.api.schemas import REQUEST_MODELS, RESPONSE_MODELS

PREFIX = "/api/agent/v1"
API_VERSION = "1.0.0"
_REF = "#/components/schemas/{model}"

_ERRORS = {
    400: "请求内容不符合接口要求（JSON、字段、CSR、公钥或持有证明）",
    401: "没有会话令牌、令牌无效或已过期（session_invalid），或配对码无效（pairing_invalid）",
    403: "本会话或这把 Key 不能做此操作（wrong_operation、key_mismatch、key_not_in_stock……）",
    404: "没有这个接口",
    405: "请求方法不对",
    409: "订单或 Key 的状态不允许（order_changed、so_pin_already_released、roles_missing……）",
    429: "配对失败次数过多，须等待（Retry-After 秒）",
    503: "CA 暂时无法签发",
}


def _ref(model: str) -> dict[str, Any]:
    return {"$ref": _REF.format(model=model)}


def _json_content(model: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(model)}}


def _operation(
    *,
    operation_id: str,
    summary: str,
    description: str,
    ok: tuple[int, str, str],
    errors: tuple[int, ...],
    body: str | None = None,
    authenticated: bool = True,
) -> dict[str, Any]:
    status, model, what = ok
    responses: dict[str, Any] = {str(status): {"description": what, "content": _json_content(model)}}
    for code in (*errors, 404, 405):
        response: dict[str, Any] = {"description": _ERRORS[code], "content": _json_content("ErrorOut")}
        if code == 401:
            response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        if code == 429:
            response["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}, "required": True}}
        responses[str(code)] = response
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "description": description,
        "tags": ["agent"],
        "responses": responses,
        "security": [{"agentSession": []}] if authenticated else [],
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": _json_content(body)}
    return operation


@functools.cache
def openapi_document() -> dict[str, Any]:
    _, definitions = models_json_schema(
        [(model, "validation") for model in REQUEST_MODELS] + [(model, "serialization") for model in RESPONSE_MODELS],
        ref_template=_REF,
    )
    schemas = definitions.get("$defs", {})
    paths = {
        f"{PREFIX}/sessions": {
            "post": _operation(
                operation_id="openSession",
                summary="用配对码和 Key 序列号换取会话",
                description=(
                    "配对码只能用一次（无论成功与否）；同一地址配对失败过多会被限流（429）。"
                    "写入（write）会话接受空白库存 Key；下载（download）和解锁（unlock）会话只接受订单上的 Key。"
                ),
                ok=(201, "SessionCreatedOut", "会话已建立；token 只在这里返回一次"),
                errors=(400, 401, 403, 409, 429),
                body="SessionOpenIn",
                authenticated=False,
            )
        },
        f"{PREFIX}/session": {
            "get": _operation(
                operation_id="getSession",
                summary="会话、订单与进度",
                description="重启后的证书助手据此知道哪些证书已签发（issued）或已确认写入（installed）。",
                ok=(200, "SessionOut", "会话"),
                errors=(401,),
            )
        },
        f"{PREFIX}/certificates": {
            "post": _operation(
                operation_id="requestCertificate",
                summary="为 Key 上的密钥对申请证书",
                description=(
                    "签名证书用 csr_pem；加密密钥对不能签名，用 public_key_pem + pop_signature"
                    "（签名证书签发之后，由同一 Key 的签名密钥签署持有证明消息）。"
                    "同一订单、用途和公钥总是得到同一张证书（可安全重试）。"
                ),
                ok=(200, "CertificateOut", "证书及证书链"),
                errors=(400, 401, 403, 409, 503),
                body="CertificateIn",
            )
        },
        f"{PREFIX}/confirm": {
            "post": _operation(
                operation_id="confirmInstalled",
                summary="确认证书已写入 Key",
                description="幂等：已确认的订单再次确认直接返回当前状态。",
                ok=(200, "OrderStatusOut", "订单的新状态"),
                errors=(400, 401, 403, 409),
                body="ConfirmIn",
            )
        },
        f"{PREFIX}/unlock/start": {
            "post": _operation(
                operation_id="startUnlock",
                summary="发放管理员 PIN（只发放一次）",
                description="返回 Key 当前的管理员 PIN 和须设置的新管理员 PIN；在解锁结果报告之前不会再次发放。",
                ok=(200, "UnlockStartOut", "管理员 PIN"),
                errors=(401, 403, 409),
            )
        },
        f"{PREFIX}/unlock/finish": {
            "post": _operation(
                operation_id="finishUnlock",
                summary="报告解锁结果",
                description="ok=true 完成订单；ok=false 转人工远程协助（error 随工单给客服）。",
                ok=(200, "OrderStatusOut", "订单的新状态"),
                errors=(400, 401, 403, 409),
                body="UnlockFinishIn",
            )
        },
        f"{PREFIX}/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "本文档",
                "tags": ["meta"],
                "security": [],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1 文档",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "405": {"description": _ERRORS[405], "content": _json_content("ErrorOut")},
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "certdesk 证书助手接口",
            "version": API_VERSION,
            "description": (
                "证书助手（certdesk-agent）与自助办理平台之间的接口：配对、申请证书、确认写入、在线解锁。"
                "错误一律为 JSON {code, message}。详见 docs/api.md。"
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "agentSession": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "POST /sessions 返回的会话令牌（有效 30 分钟）",
                }
            },
        },
    }
