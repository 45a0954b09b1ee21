"""Refusing NUL characters: no text the dashboard stores or looks up may hold one.

PostgreSQL's text cannot (a query with one fails, a 500), and a NUL has no use in a name,
a filter, a reason or a script. :class:`RefuseNul` answers such a request with a 422
before any route sees it, whichever parameter or field carries it.
"""

from __future__ import annotations

import re

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.web.errors import ProblemOut, refusal

_RAW = re.compile(rb"\x00")
#: In a query string or a form body: raw or percent-encoded.
_ENCODED = re.compile(rb"\x00|%00")
#: In JSON: raw, or a ``\u0000`` escape that is not itself escaped (``\\u0000`` is text).
_JSON = re.compile(rb"\x00|(?<!\\)(?:\\\\)*\\u0000")


def _body_pattern(scope: Scope) -> re.Pattern[bytes]:
    headers = dict(scope.get("headers", ()))
    kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    if kind == b"application/x-www-form-urlencoded":
        return _ENCODED
    if kind == b"application/json" or kind.endswith(b"+json"):
        return _JSON
    return _RAW


class RefuseNul:
    """ASGI middleware: a request with a NUL character in its path, query string or body
    is refused (422, the API's :class:`~bot.web.errors.ErrorOut` or the error page). The
    body is read whole and replayed to the route: the dashboard takes no uploads, and its
    largest body, a script's source, is limited to 200,000 characters."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or _ENCODED.search(scope.get("query_string", b"")):
            await _refuse(scope, receive, send, "address")
            return
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        if _body_pattern(scope).search(body):
            await _refuse(scope, receive, send, "body")
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, where: str) -> None:
    problem = ProblemOut(field=where, message="contains a NUL character")
    message = f"the {where} contains a NUL character"
    answer = refusal(Request(scope, receive), 422, message, [problem])
    await answer(scope, receive, send)
