"""A fake Twilio REST API on 127.0.0.1, for the dialer and end-to-end tests.

It speaks the shape of ``/2010-04-01/Accounts/{AccountSid}/Calls.json``: Basic auth
(401, code 20003), required fields (400 with Twilio's error codes), 201 with a call
resource, hang-up by ``POST .../Calls/{CallSid}.json Status=completed``. After creating a
call it plays the script of the destination number (:data:`SCRIPTS`) as status and AMD
callbacks, signed with ``X-Twilio-Signature`` exactly as Twilio does, to the URLs the
create request named; only the status events the request subscribed to are sent, and
the AMD verdict only when asynchronous AMD was asked for. Failures can be injected for
the next requests (:meth:`FakeTwilio.fail_next`).

The signature code here is written independently of ``bot.telephony.webhooks`` (and
pinned to Twilio's published test vector in the tests) so the two check each other.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "fake-auth-token-不要外传"
FROM_NUMBER = "+8675500000000"

#: ("status", CallStatus) or ("amd", AnsweredBy). A script that does not end on a final
#: status leaves the call up until it is hung up.
Step = tuple[str, str]
SCRIPTS: dict[str, list[Step]] = {
    "+8613800000001": [
        ("status", "ringing"),
        ("status", "in-progress"),
        ("amd", "human"),
        ("status", "completed"),
    ],
    "+8613800000002": [("status", "ringing"), ("status", "no-answer")],
    "+8613800000003": [("status", "busy")],
    "+8613800000004": [("status", "failed")],
    "+8613800000005": [
        ("status", "ringing"),
        ("status", "in-progress"),
        ("amd", "machine_end_beep"),
        ("status", "completed"),
    ],
    # answered by a person, stays up until we hang up
    "+8613800000006": [("status", "ringing"), ("status", "in-progress"), ("amd", "human")],
}
_FINAL = {"completed", "busy", "no-answer", "failed", "canceled"}
#: Which StatusCallbackEvent subscribes to which CallStatus (finals always come).
_EVENT_OF = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def sign(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's X-Twilio-Signature: base64(HMAC-SHA1(token, url + sorted name+value))."""
    pieces = sorted(set(params))
    payload = url + "".join(f"{k}{v}" for k, v in pieces)
    return base64.b64encode(
        hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    ).decode()


@dataclass
class Recorded:
    method: str
    path: str
    form: list[tuple[str, str]]
    authorized: bool
    status: int = 0

    def get(self, name: str) -> str | None:
        return next((v for k, v in self.form if k == name), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.form if k == name]


@dataclass
class Callback:
    url: str
    params: dict[str, str]
    answer: int


@dataclass
class FakeCall:
    sid: str
    to: str
    from_: str
    form: list[tuple[str, str]]
    #: The script's AMD verdict (sent on the AMD callback, or with the status callbacks
    #: after answering when AMD was synchronous).
    verdict: str | None = None
    status: str = "queued"
    answered_at: float | None = None
    sequence: int = 0
    task: asyncio.Task[None] | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def get(self, name: str) -> str | None:
        return next((v for k, v in self.form if k == name), None)

    def resource(self) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "account_sid": ACCOUNT_SID,
            "to": self.to,
            "from": self.from_,
            "status": self.status,
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{self.sid}.json",
        }


def _error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return JSONResponse(body, status_code=status, headers=headers)


class FakeTwilio:
    """Run with ``with FakeTwilio() as fake: ...``; ``fake.base_url`` is the API root."""

    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.scripts = {k: list(v) for k, v in SCRIPTS.items()}
        self.requests: list[Recorded] = []
        self.calls: dict[str, FakeCall] = {}
        self.callbacks: list[Callback] = []
        self._failures: deque[tuple[int, str | None]] = deque()
        self._stalls: deque[float] = deque()
        self._client: httpx.AsyncClient | None = None
        self._lock = threading.Lock()
        self.app = self._build_app()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        #: What "the phone" does once a call is answered: given the call (and its TwiML),
        #: e.g. connect a simulated callee to the ``<Stream>`` URL, as Twilio would.
        self.on_answer: Callable[[FakeCall], Coroutine[Any, Any, None]] | None = None
        self.media_tasks: list[asyncio.Task[None]] = []

    # -- control -----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        """Forget everything (between tests sharing one server)."""
        with self._lock:
            for call in self.calls.values():
                if call.task is not None:
                    call.task.cancel()
            self.scripts = {k: list(v) for k, v in SCRIPTS.items()}
            self.requests.clear()
            self.calls.clear()
            self.callbacks.clear()
            self._failures.clear()
            self._stalls.clear()
            self.on_answer = None

    def fail_next(self, *statuses: int, retry_after: str | None = None) -> None:
        """Answer the next API requests with these HTTP errors, in order."""
        with self._lock:
            self._failures.extend((s, retry_after) for s in statuses)

    def stall_next(self, *seconds: float) -> None:
        """Handle the next API requests normally (the call is placed) but answer each
        only after this many seconds: a client timeout that hides a success."""
        with self._lock:
            self._stalls.extend(seconds)

    def api_requests(self, path_suffix: str = "/Calls.json") -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith(path_suffix)]

    def wait_call_done(self, sid: str, timeout: float = 5.0) -> None:
        """Block until every callback of the call's script has been answered."""
        if not self.calls[sid].done.wait(timeout):
            raise TimeoutError(f"call {sid} still running")

    def __enter__(self) -> FakeTwilio:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake Twilio did not start")
            time.sleep(0.005)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=10)

    # -- the API -------------------------------------------------------------------------

    def _authorized(self, request: Request, account: str) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return (
            hmac.compare_digest(user, self.account_sid)
            and hmac.compare_digest(password.encode(), self.auth_token.encode())
            and account == self.account_sid
        )

    async def _record(self, request: Request, account: str) -> tuple[Recorded, Response | None]:
        form = parse_qsl((await request.body()).decode(), keep_blank_values=True)
        rec = Recorded(request.method, request.url.path, form, self._authorized(request, account))
        with self._lock:
            self.requests.append(rec)
            failure = self._failures.popleft() if self._failures and rec.authorized else None
        if not rec.authorized:
            return rec, _error(401, 20003, "Authenticate")
        if failure is not None:
            status, retry_after = failure
            headers = {"Retry-After": retry_after} if retry_after else None
            code, message = (
                (20429, "Too Many Requests") if status == 429 else (20500, "Internal Server Error")
            )
            return rec, _error(status, code, message, headers)
        return rec, None

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/2010-04-01/Accounts/{account}/Calls.json")
        async def create_call(account: str, request: Request) -> Response:
            rec, refusal = await self._record(request, account)
            answer = refusal or self._create(rec)
            rec.status = answer.status_code
            await self._maybe_stall()
            return answer

        @app.post("/2010-04-01/Accounts/{account}/Calls/{sid}.json")
        async def update_call(account: str, sid: str, request: Request) -> Response:
            rec, refusal = await self._record(request, account)
            answer = refusal or await self._update(sid, rec)
            rec.status = answer.status_code
            await self._maybe_stall()
            return answer

        return app

    async def _maybe_stall(self) -> None:
        with self._lock:
            stall = self._stalls.popleft() if self._stalls else 0.0
        if stall:
            await asyncio.sleep(stall)

    def _create(self, rec: Recorded) -> Response:
        to, from_ = rec.get("To"), rec.get("From")
        if not to:
            return _error(400, 21201, "No 'To' number is specified")
        if not _E164.match(to):
            return _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not from_:
            return _error(400, 21603, "A 'From' phone number is required.")
        twiml, url = rec.get("Twiml"), rec.get("Url")
        if not twiml and not url and not rec.get("ApplicationSid"):
            return _error(400, 21205, "Url parameter is required.")
        if twiml:
            try:
                ET.fromstring(twiml)
            except ET.ParseError:
                return _error(400, 12100, "Document parse failure")
        script = self.scripts.get(to, [])
        verdict = next((v for kind, v in script if kind == "amd"), None)
        call = FakeCall("CA" + secrets.token_hex(16), to, from_, rec.form, verdict)
        self.calls[call.sid] = call
        call.task = asyncio.create_task(self._play(call, script))
        return JSONResponse(call.resource(), status_code=201)

    async def _update(self, sid: str, rec: Recorded) -> Response:
        call = self.calls.get(sid)
        if call is None:
            return _error(404, 20404, f"The requested resource /Calls/{sid}.json was not found")
        if rec.get("Status") not in ("completed", "canceled"):
            return _error(400, 21218, "Invalid Status")
        if call.status in _FINAL:
            return _error(400, 21220, "Call is not in-progress. Cannot redirect.")
        if call.task is not None and not call.task.done():
            call.task.cancel()
        final = "completed" if call.status == "in-progress" else "canceled"
        call.status = final
        call.task = asyncio.create_task(self._finish_after_hangup(call, final))
        return JSONResponse(call.resource(), status_code=200)

    # -- callbacks -----------------------------------------------------------------------

    async def _play(self, call: FakeCall, script: list[Step]) -> None:
        try:
            await self._status(call, "initiated")
            for kind, value in script:
                if kind == "amd":
                    await self._amd(call, value)
                else:
                    await self._status(call, value)
        finally:
            if call.status in _FINAL:
                call.done.set()

    async def _finish_after_hangup(self, call: FakeCall, final: str) -> None:
        try:
            await self._status(call, final)
        finally:
            call.done.set()

    async def _status(self, call: FakeCall, status: str) -> None:
        if status != "initiated":
            call.status = status
        if status == "in-progress":
            call.answered_at = time.monotonic()
            if self.on_answer is not None:
                self.media_tasks.append(asyncio.create_task(self.on_answer(call)))
        subscribed = set(" ".join(v for k, v in call.form if k == "StatusCallbackEvent").split())
        event = _EVENT_OF.get(status, "completed")
        url = call.get("StatusCallback")
        if not url or (status not in _FINAL and event not in subscribed):
            return
        params = self._common(call) | {
            "CallStatus": status,
            "CallbackSource": "call-progress-events",
        }
        if status in _FINAL:
            elapsed = time.monotonic() - call.answered_at if call.answered_at else 0
            params["CallDuration"] = str(round(elapsed))
        sync_amd = call.get("MachineDetection") and call.get("AsyncAmd") != "true"
        if sync_amd and call.answered_at and call.verdict:
            params["AnsweredBy"] = call.verdict
        await self._post(url, params)

    async def _amd(self, call: FakeCall, verdict: str) -> None:
        url = call.get("AsyncAmdStatusCallback")
        if call.get("MachineDetection") and call.get("AsyncAmd") == "true" and url:
            params = self._common(call) | {
                "AnsweredBy": verdict,
                "MachineDetectionDuration": "1800",
            }
            await self._post(url, params)

    def _common(self, call: FakeCall) -> dict[str, str]:
        call.sequence += 1
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call.sid,
            "Direction": "outbound-api",
            "From": call.from_,
            "To": call.to,
            "Timestamp": format_datetime(datetime.now(UTC)),
            "SequenceNumber": str(call.sequence - 1),
        }

    async def _post(self, url: str, params: dict[str, str]) -> None:
        if urlsplit(url).hostname != "127.0.0.1":  # tests never reach the internet
            with self._lock:
                self.callbacks.append(Callback(url, params, -1))
            return
        signature = sign(self.auth_token, url, list(params.items()))
        if self._client is None:  # one pool, made on the server's own loop
            self._client = httpx.AsyncClient(timeout=5)
        try:
            resp = await self._client.post(
                url, data=params, headers={"X-Twilio-Signature": signature}
            )
            answer = resp.status_code
        except httpx.HTTPError:
            answer = 0
        with self._lock:
            self.callbacks.append(Callback(url, params, answer))
