"""The stylesheet, the chart script and plotly.js, served behind sign-in like every other route (only
files that exist at start). plotly.js comes from the installed ``plotly`` wheel (pinned in
requirements-api.txt), which ships it as package data: the image carries it, no CDN is ever asked."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from portal.app.deps import CurrentUser

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
PLOTLY_JS = "plotly.min.js"


def _plotly_js() -> Path | None:
    try:
        path = Path(str(importlib.resources.files("plotly") / "package_data" / PLOTLY_JS))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None


FILES = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()} if STATIC_DIR.is_dir() else {}
if (_bundled := _plotly_js()) is not None:
    FILES[PLOTLY_JS] = _bundled
router = APIRouter(include_in_schema=False)


@router.get("/static/{filename}")
def static_file(filename: str, principal: CurrentUser) -> FileResponse:
    path = FILES.get(filename)
    if path is None:
        raise HTTPException(404, "no such file")
    return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})
