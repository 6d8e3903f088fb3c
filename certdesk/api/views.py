"""The agent's JSON API (`/api/agent/v1/`). Handlers parse the body, find the session and call a
service; nothing else.

No Django session and no CSRF: the agent is not a browser, and it authenticates each request
with the bearer token it got for a pairing code (a header no other site can make a browser send).
Every answer is JSON and `Cache-Control: no-store` (unlock/start carries an admin PIN).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ValidationError

from certdesk.api import conf, selectors, services
from certdesk.api.errors import status_for
from certdesk.api.openapi import openapi_document
from certdesk.api.schemas import (
    CertificateIn,
    CertificateOut,
    CertificateProgressOut,
    ConfirmIn,
    ErrorOut,
    FieldErrorOut,
    OrderOut,
    OrderStatusOut,
    ProgressOut,
    SessionCreatedOut,
    SessionOpenIn,
    SessionOut,
    SubjectOut,
    UnlockFinishIn,
    UnlockStartOut,
)
from certdesk.core.errors import DomainError, RateLimited
from certdesk.core.http import client_ip
from certdesk.fulfilment import keywork
from certdesk.fulfilment.models import AgentSession
from certdesk.orders.models import Order
from certdesk.ra.models import CertificateRole

logger = logging.getLogger(__name__)

Body = TypeVar("Body", bound=BaseModel)


class _BadRequest(Exception):
    def __init__(self, code: str, message: str, errors: list[FieldErrorOut] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.errors = errors


def _json(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> JsonResponse:
    response = JsonResponse(
        model.model_dump(mode="json", exclude_none=isinstance(model, ErrorOut)),
        status=status,
        json_dumps_params={"ensure_ascii": False},
    )
    response["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_response(
    code: str,
    message: str,
    status: int,
    *,
    errors: list[FieldErrorOut] | None = None,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    return _json(ErrorOut(code=code, message=message, errors=errors), status=status, headers=headers)


def _domain_error(error: DomainError) -> JsonResponse:
    status = status_for(error)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="certdesk-agent"'
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after_seconds)
    return error_response(error.code, error.message, status, headers=headers)


def _parse(request: HttpRequest, model: type[Body]) -> Body:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > conf.MAX_BODY_BYTES:
        raise _BadRequest("body_too_large", "请求内容过大。")
    if not length:
        raise _BadRequest("json_invalid", "请求内容为空：须为 JSON 对象。")
    if request.content_type != "application/json":
        raise _BadRequest("json_required", "请求内容须为 JSON（Content-Type: application/json）。")
    try:
        data = json.loads(request.body)
    except (ValueError, RecursionError, RequestDataTooBig):
        raise _BadRequest("json_invalid", "请求内容不是有效的 JSON。") from None
    if not isinstance(data, dict):
        raise _BadRequest("json_invalid", "请求内容须为 JSON 对象。")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            FieldErrorOut(field=".".join(str(part) for part in error["loc"]) or "(body)", problem=error["msg"])
            for error in exc.errors(include_url=False)
        ]
        fields = "、".join(dict.fromkeys(p.field for p in problems))
        raise _BadRequest("invalid_request", f"请求内容不符合接口要求（{fields}）。", problems) from None


def _bearer(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise DomainError("缺少会话令牌：请先用配对码建立会话。", code="session_invalid")
    return token.strip()


def agent_endpoint(
    method: str, *, authenticated: bool = True
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """The frame of every handler: method check, session from the bearer token, refusals as JSON."""

    def decorate(handler: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @wraps(handler)
        def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            if request.method != method:
                return error_response(
                    "method_not_allowed", f"该接口只接受 {method} 请求。", 405, headers={"Allow": method}
                )
            try:
                if authenticated:
                    kwargs["session"] = keywork.agent_session_get(token=_bearer(request))
                return handler(request, **kwargs)
            except _BadRequest as exc:
                return error_response(exc.code, exc.message, 400, errors=exc.errors)
            except DomainError as exc:
                return _domain_error(exc)
            except Exception:
                # A bug, not the caller's fault: logged with its traceback, answered in JSON (no
                # request body in the log: unlock answers carry an admin PIN).
                logger.exception("agent API %s %s failed", request.method, request.path)
                return error_response("server_error", "服务器内部错误，请稍后重试；仍不行请联系客服。", 500)

        return view

    return decorate


# ---- bodies -------------------------------------------------------------------------------------


def _status(order: Order) -> OrderStatusOut:
    return OrderStatusOut(order_status=order.status, order_status_label=str(order.get_status_display()))


def _session_fields(session: AgentSession) -> dict[str, Any]:
    state = selectors.agent_session_state(session=session)
    order = state.order
    return {
        "expires_at": session.expires_at,
        "operation": session.operation,
        "operation_pending": state.operation_pending,
        "order": OrderOut(
            number=order.number,
            business_type=order.business_type,  # type: ignore[arg-type]
            business_type_label=str(order.get_business_type_display()),
        ),
        "order_status": order.status,
        "order_status_label": str(order.get_status_display()),
        "subject": SubjectOut(**vars(state.subject)),
        "roles": [role.value for role in state.roles],
        "key_algorithm": selectors.KEY_ALGORITHM,
        "renewal_of": state.renewal_of,
        "key_sn": session.key_sn,
        "progress": ProgressOut(
            certificates=[
                CertificateProgressOut(
                    role=record.role,  # type: ignore[arg-type]
                    status=record.status,  # type: ignore[arg-type]
                    serial=record.serial or "",
                    spki_sha256=record.spki_sha256,
                    not_after=record.not_after,  # type: ignore[arg-type]
                )
                for record in state.certificates
            ],
            all_installed=state.all_installed,
            unlock_pending=state.unlock_pending,
        ),
    }


# ---- handlers -----------------------------------------------------------------------------------


@agent_endpoint("POST", authenticated=False)
def session_open(request: HttpRequest) -> HttpResponse:
    body = _parse(request, SessionOpenIn)
    opened = services.agent_session_open_limited(code=body.pairing_code, key_sn=body.key_sn, ip=client_ip(request))
    return _json(SessionCreatedOut(token=opened.token, **_session_fields(opened.session)), status=201)


@agent_endpoint("GET")
def session_detail(request: HttpRequest, session: AgentSession) -> HttpResponse:
    return _json(SessionOut(**_session_fields(session)))


@agent_endpoint("POST")
def certificate_request(request: HttpRequest, session: AgentSession) -> HttpResponse:
    body = _parse(request, CertificateIn)
    record = keywork.agent_certificate_request(
        session=session,
        role=CertificateRole(body.role),
        csr_pem=body.csr_pem,
        public_key_pem=body.public_key_pem,
        pop_signature=body.pop_signature_bytes if body.public_key_pem else b"",
    )
    return _json(
        CertificateOut(
            serial=record.serial or "",
            role=record.role,  # type: ignore[arg-type]
            certificate_pem=record.certificate_pem,
            chain_pem=record.chain_pem,
            not_before=record.not_before,  # type: ignore[arg-type]
            not_after=record.not_after,  # type: ignore[arg-type]
        )
    )


@agent_endpoint("POST")
def confirm(request: HttpRequest, session: AgentSession) -> HttpResponse:
    body = _parse(request, ConfirmIn)
    return _json(_status(keywork.agent_confirm(session=session, serials=body.serials)))


@agent_endpoint("POST")
def unlock_start(request: HttpRequest, session: AgentSession) -> HttpResponse:
    pins = keywork.agent_unlock_start(session=session)
    return _json(UnlockStartOut(so_pin=pins.so_pin, new_so_pin=pins.new_so_pin))


@agent_endpoint("POST")
def unlock_finish(request: HttpRequest, session: AgentSession) -> HttpResponse:
    body = _parse(request, UnlockFinishIn)
    return _json(_status(keywork.agent_unlock_finish(session=session, ok=body.ok, error=body.error)))


@agent_endpoint("GET", authenticated=False)
def openapi(request: HttpRequest) -> HttpResponse:
    response = JsonResponse(openapi_document(), json_dumps_params={"ensure_ascii": False})
    response["Cache-Control"] = "public, max-age=300"
    return response


@csrf_exempt
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    return error_response("not_found", "没有这个接口。", 404)
