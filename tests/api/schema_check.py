"""A Django test client for the agent API that checks every answer against the served OpenAPI
document: the status must be documented for that route and method, and the body must match the
documented schema (OpenAPI 3.1 = JSON Schema 2020-12)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.test import Client
from openapi_schema_validator import OAS31Validator

from certdesk.api.openapi import PREFIX, openapi_document


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def code(self) -> str:
        return str(self.body.get("code", ""))


@dataclass
class CheckedApi:
    client: Client
    remote_addr: str = "127.0.0.1"
    seen: set[tuple[str, str, int]] = field(default_factory=set)

    def get(self, route: str, *, token: str | None = None) -> Answer:
        return self._call("get", route, token=token)

    def post(
        self,
        route: str,
        body: Any = None,
        *,
        token: str | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> Answer:
        return self._call("post", route, body=body, token=token, raw=raw, content_type=content_type)

    def _call(
        self,
        method: str,
        route: str,
        *,
        body: Any = None,
        token: str | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> Answer:
        path = f"{PREFIX}/{route}"
        extra: dict[str, str] = {"REMOTE_ADDR": self.remote_addr}
        if token is not None:
            extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        if method == "get":
            response = self.client.get(path, **extra)  # type: ignore[arg-type]
        else:
            data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
            response = self.client.post(path, data=data, content_type=content_type, **extra)  # type: ignore[arg-type]
        assert response["Content-Type"].startswith("application/json"), response.content[:200]
        answer = Answer(status=response.status_code, body=response.json(), headers=dict(response.items()))
        schema_check(method, path, answer)
        self.seen.add((method, path, answer.status))
        return answer


def schema_check(method: str, path: str, answer: Answer) -> None:
    document = openapi_document()
    operation = document["paths"].get(path, {}).get(method)
    if operation is None:
        # Not a documented route: the API's JSON 404 (or 405).
        assert answer.status in (404, 405), (method, path, answer.status)
        schema: dict[str, Any] = {"$ref": "#/components/schemas/ErrorOut"}
    else:
        documented = operation["responses"].get(str(answer.status))
        assert documented is not None, f"{method.upper()} {path} answered {answer.status}, not documented"
        schema = documented["content"]["application/json"]["schema"]
        for name, header in documented.get("headers", {}).items():
            if header.get("required"):
                assert name in answer.headers, f"{name} missing on {answer.status}"
    validator = OAS31Validator({**schema, "components": document["components"]})
    problems = [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(answer.body)]
    assert not problems, f"{method.upper()} {path} {answer.status} does not match its schema: {problems}"
