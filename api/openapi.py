"""The OpenAPI document's account of what the handlers read straight from the request."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from api.idempotency import MAX_KEY_CHARS


def document_headers(app: FastAPI) -> None:
    """Put the bearer token (a security scheme: the docs get an "Authorize" button) and the
    ``Idempotency-Key`` header of every POST into ``app``'s OpenAPI schema; the handlers read
    both straight from the request (:mod:`api.deps`)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
            "type": "http", "scheme": "bearer",
            "description": "A token from POST /api/v1/tokens (the first admin token: STREETBRAIN_ADMIN_TOKEN)"}
        for path, ops in schema.get("paths", {}).items():
            if not path.startswith("/api/v1/"):
                continue
            for method, op in ops.items():
                op["security"] = [{"bearer": []}]
                if method == "post":
                    op.setdefault("parameters", []).append({
                        "name": "Idempotency-Key", "in": "header", "required": False,
                        "description": "Send the same key when retrying: the request acts once and the retry "
                                       "gets the first answer back (1-200 characters).",
                        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_CHARS}})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["document_headers"]
