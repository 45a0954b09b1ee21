"""Rendering pages: every template gets the viewer (for the navigation) and its CSRF token."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from bot.web.deps import Viewer


def render(
    request: Request,
    name: str,
    viewer: Viewer | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    page: HTMLResponse = request.app.state.templates.TemplateResponse(
        request,
        name,
        {"viewer": viewer, "csrf_token": viewer.csrf_token if viewer else "", **context},
        status_code=status_code,
    )
    return page
