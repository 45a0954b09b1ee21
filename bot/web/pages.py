"""Rendering pages: every template gets the viewer (for the navigation) and its CSRF token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from bot.web import i18n
from bot.web.deps import Viewer


def locale_of(request: Request) -> str:
    """This request's locale (see :mod:`bot.web.i18n`), worked out once."""
    found = getattr(request.state, "locale", None)
    if found is None:
        web = request.app.state.web
        found = i18n.choose(
            request.query_params.get("lang"),
            request.cookies.get(i18n.LANG_COOKIE),
            request.headers.get("accept-language"),
            getattr(web, "default_locale", i18n.SUPPORTED[0]),
        )
        request.state.locale = found
    return str(found)


def page_gettext(request: Request) -> Callable[[str], str]:
    """gettext in this request's language, for text a route makes in Python."""
    return i18n.translations(locale_of(request)).gettext


def render(
    request: Request,
    name: str,
    viewer: Viewer | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The page ``name`` in the request's language; a ``?lang=`` choice is remembered."""
    locale = locale_of(request)
    speech = i18n.context(locale, request.app.state.web.zone)
    page: HTMLResponse = request.app.state.templates.TemplateResponse(
        request,
        name,
        {
            **speech,
            "viewer": viewer,
            "csrf_token": viewer.csrf_token if viewer else "",
            **context,
        },
        status_code=status_code,
    )
    if i18n.normalise(request.query_params.get("lang")):
        page.set_cookie(i18n.LANG_COOKIE, locale, max_age=i18n.LANG_COOKIE_MAX_AGE, samesite="lax")
    return page
