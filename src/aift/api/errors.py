"""One JSON shape for every error: {"error": {code, message, details, request_id}}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from aift.errors import AiftError
from aift.monitoring.logging import request_id_var

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid_input",
}


class ErrorDetail(BaseModel):
    code: str = Field(..., description="Stable machine-readable code, e.g. not_found.")
    message: str = Field(..., description="What went wrong and what to do.")
    details: Any = Field(None, description="Per-field problems of a validation error.")
    request_id: str = Field(..., description="The X-Request-ID of the request, for the logs.")


class ErrorBody(BaseModel):
    """aift's one error shape."""

    error: ErrorDetail


class OllamaError(BaseModel):
    """Ollama's error shape, kept on the Ollama-compatible routes."""

    error: str


_MEANINGS = {
    400: "The request cannot be carried out as sent (e.g. a prompt over the context).",
    401: "Missing or wrong credential (accounts exist, or AIFT_API_KEY is set).",
    403: "The credential may not do this (its role or scopes), or the request came from "
    "another site.",
    404: "The named job, model, knowledge base, document or dataset does not exist.",
    409: "The request clashes with the current state (e.g. cancel a finished job).",
    413: "The upload is larger than AIFT_MAX_UPLOAD_MB.",
    422: "A field is missing, malformed or out of range; the message names it.",
    429: "A limit is reached (sign-in tries, a user's jobs); the message says which.",
    500: "A bug: nothing sent was lost; report the request id.",
    501: "The feature needs hardware or an optional extra this machine lacks.",
    503: "A backing service (job queue, model hub, Ollama) cannot be reached.",
    507: "The workspace's disk is full or read-only; nothing stored was changed.",
}


def documented_errors(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """The error responses every API route may give, for the OpenAPI document."""
    return {code: {"model": model, "description": text} for code, text in _MEANINGS.items()}


API_ERRORS = documented_errors(ErrorBody)
OLLAMA_ERRORS = documented_errors(OllamaError)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details,
            "request_id": request_id_var.get(),
        }
    }


def _field(loc: tuple) -> str:
    return ".".join(str(part) for part in loc)


async def _aift_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AiftError)
    return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=exc.status_code)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"field": _field(err["loc"]), "message": err["msg"], "type": err["type"]}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return JSONResponse(
        error_body("validation_error", f"Invalid request — {summary}", details), status_code=422
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    message = str(exc.detail)
    if exc.status_code == 405:
        allowed = allowed_methods(request)
        headers["Allow"] = ", ".join(allowed)
        message = f"{request.method} is not allowed here; use {' or '.join(allowed)}."
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=headers)


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts on this path (Starlette names only the first
    route that matched the path, e.g. GET but not POST on /api/v1/jobs). Asks the
    router itself, method by method, so nested routers count too."""
    from starlette.routing import Match

    routes = request.app.router.routes
    return [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]


def unexpected_error_message() -> str:
    """What a 500 says: nothing was lost, and the request id to report."""
    return (
        "Unexpected server error. Nothing you sent was lost; report it with request id "
        f"{request_id_var.get()} (details are in the server log)."
    )


def install_error_handlers(app: FastAPI) -> None:
    """Every error answers with one JSON shape: {"error": {code, message, details}}."""
    app.add_exception_handler(AiftError, _aift_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
