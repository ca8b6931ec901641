"""Errors at the HTTP edge: every refusal is a 4xx (or a 503 to retry) whose body names the
field and the reason, ``{"error": {"status", "field", "reason", "message"}}``; never a
traceback. Domain errors (:mod:`twin.errors`, the brain's :class:`~actors.brain.Conflict`)
become HTTP answers here and nowhere else.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from actors.brain import Conflict
from actors.client import BrainUnavailable
from actors.forks import ForkFailed
from twin.errors import IllegalTransition, NotFound, TwinError, ValidationError

log = logging.getLogger("streetbrain.api")


class ApiError(Exception):
    """An error answer.

    Args:
        status: HTTP status.
        field: The field at fault (a body field, a header, a query parameter), or ``None``.
        reason: What is wrong with it.
        headers: Extra response headers (``WWW-Authenticate``, ``Retry-After``).
    """

    def __init__(self, status: int, field: str | None, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status, self.field, self.reason, self.headers = status, field, reason, headers


def error_body(status: int, field: str | None, reason: str) -> dict[str, Any]:
    """The one error shape of the native API."""
    message = f"{field}: {reason}" if field else reason
    return {"error": {"status": status, "field": field, "reason": reason, "message": message}}


def error_response(exc: BaseException) -> JSONResponse | None:
    """The answer to an error raised while serving a request (``None``: not one of ours, a bug)."""
    if isinstance(exc, ApiError):
        return JSONResponse(error_body(exc.status, exc.field, exc.reason), status_code=exc.status, headers=exc.headers)
    if isinstance(exc, ValidationError):
        return JSONResponse(error_body(422, exc.field, exc.reason), status_code=422)
    if isinstance(exc, NotFound):
        return JSONResponse(error_body(404, None, str(exc)), status_code=404)
    if isinstance(exc, IllegalTransition):
        return JSONResponse(error_body(409, "action", str(exc)), status_code=409)
    if isinstance(exc, Conflict):
        return JSONResponse(error_body(409, "Idempotency-Key", str(exc)), status_code=409)
    if isinstance(exc, BrainUnavailable | ForkFailed):
        return JSONResponse(error_body(503, None, str(exc)), status_code=503, headers={"Retry-After": "2"})
    if isinstance(exc, TwinError):
        return JSONResponse(error_body(409, None, str(exc)), status_code=409)
    if isinstance(exc, StarletteHTTPException):
        return JSONResponse(error_body(exc.status_code, None, str(exc.detail)), status_code=exc.status_code)
    return None


async def _known_error(_request: Request, exc: Exception) -> JSONResponse:
    answer = error_response(exc)
    assert answer is not None  # registered only for the types it answers
    return answer


async def _request_validation(_request: Request, exc: Exception) -> JSONResponse:
    """A request FastAPI could not parse: 400 malformed JSON, else 422 naming the first bad field."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    err = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
    if err.get("type") == "json_invalid":
        return JSONResponse(error_body(400, "body", f"malformed JSON: {err.get('msg')}"), status_code=400)
    field = ".".join(loc) or "body"
    return JSONResponse(error_body(422, field, str(err.get("msg", "invalid"))), status_code=422)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - a bug
    log.exception("unexpected error")
    return JSONResponse(error_body(500, None, f"internal error ({type(exc).__name__}); it has been logged"),
                        status_code=500)


def install_handlers(app: FastAPI) -> None:
    """Answer every error raised in ``app``'s routes in the native API's shape."""
    for kind in (ApiError, ValidationError, NotFound, IllegalTransition, Conflict, BrainUnavailable, TwinError,
                 StarletteHTTPException):
        app.add_exception_handler(kind, _known_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(Exception, _unexpected)


__all__ = ["ApiError", "error_body", "error_response", "install_handlers"]
