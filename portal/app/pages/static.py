"""The stylesheet, served behind sign-in like every other route (only files that exist at start)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from portal.app.deps import CurrentUser

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
FILES = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()} if STATIC_DIR.is_dir() else {}
router = APIRouter(include_in_schema=False)


@router.get("/static/{filename}")
def static_file(filename: str, principal: CurrentUser) -> FileResponse:
    path = FILES.get(filename)
    if path is None:
        raise HTTPException(404, "no such file")
    return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})
