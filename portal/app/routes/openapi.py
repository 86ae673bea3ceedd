"""The OpenAPI document, behind sign-in like everything else (FastAPI's public /docs are off)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from portal.app.deps import CurrentUser

router = APIRouter(tags=["meta"])


@router.get("/api/openapi.json", summary="This API's OpenAPI document", include_in_schema=False)
def openapi(request: Request, principal: CurrentUser) -> dict:
    return request.app.openapi()
