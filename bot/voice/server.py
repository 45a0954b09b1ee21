"""The bot's media endpoint: a FastAPI app with the gateway's WebSocket, served by uvicorn.

``/media`` takes one gateway media stream per call (Twilio Media Streams by default;
Telnyx and Plivo by ``settings.telephony.provider``). :class:`VoiceServer` runs the app
inside the caller's event loop, on a free local port unless told otherwise, which is how
the loopback gateway, ``bot eval --mode audio`` and the tests use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType

import uvicorn
from fastapi import FastAPI, WebSocket

from bot.voice.session import CallBook, VoiceStack, run_media_session

log = logging.getLogger(__name__)

MEDIA_PATH = "/media"
#: WebSocket close code for a failure on our side (RFC 6455, 7.4.1).
CLOSE_INTERNAL_ERROR = 1011


def media_app(stack: VoiceStack, book: CallBook, app: FastAPI | None = None) -> FastAPI:
    app = app or FastAPI(title="callbot media")
    live: set[asyncio.Task[None]] = set()

    @app.websocket(MEDIA_PATH)
    async def media(ws: WebSocket) -> None:
        await ws.accept()
        task = asyncio.current_task()
        if task is not None:
            live.add(task)
        try:
            await run_media_session(ws, stack, book)
        except Exception:  # a bug of ours: this connection ends, the server goes on
            log.exception("media session failed")
            with contextlib.suppress(Exception):
                await ws.close(code=CLOSE_INTERNAL_ERROR, reason="internal error")
        finally:
            if task is not None:
                live.discard(task)

    app.state.live_sessions = live
    app.add_api_route("/healthz", lambda: {"status": "ok"}, include_in_schema=False)
    return app


class VoiceServer:
    """``async with VoiceServer(stack) as server:`` -> ``server.media_url``."""

    def __init__(self, stack: VoiceStack, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.stack = stack
        self.book = CallBook()
        self.app = media_app(stack, self.book)
        self._config = uvicorn.Config(
            self.app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",
        )
        self._server = uvicorn.Server(self._config)
        self._task: asyncio.Task[None] | None = None
        self.host = host
        self.port = port

    @property
    def media_url(self) -> str:
        return f"ws://{self.host}:{self.port}{MEDIA_PATH}"

    @property
    def live_sessions(self) -> int:
        return len(self.app.state.live_sessions)

    def health(self) -> str:
        """``ok`` while listening, else what it is doing (the worker's ``/readyz``)."""
        if self._server.should_exit:
            return "media server stopping"
        return "ok" if self._server.started else "media server not listening"

    async def _serve(self) -> None:
        try:
            await self._server.serve()
        except SystemExit as exc:  # uvicorn's answer to a port it cannot bind
            raise OSError(
                f"the media server cannot listen on {self.host}:{self.port} (in use?)"
            ) from exc

    async def start(self) -> None:
        """Listen; raises :class:`OSError` if the address cannot be bound (a
        ``SystemExit`` from uvicorn would stop the whole event loop instead)."""
        self._task = asyncio.create_task(self._serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raise why it could not start
                raise RuntimeError("the media server stopped before it started")
            await asyncio.sleep(0.01)
        sockets = [s for srv in self._server.servers for s in srv.sockets]
        self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._task = None

    async def __aenter__(self) -> VoiceServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
