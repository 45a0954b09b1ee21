"""The landing page: what the signed-in role can open."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from bot.web.deps import Viewer, viewer
from bot.web.pages import render

router = APIRouter()


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(request: Request, who: Viewer = Depends(viewer)) -> HTMLResponse:
    return render(request, "home.html", who)
