"""OpenTelemetry traces of calls: a span per call, a child span per dialogue turn.

Optional and off by default (``tracing.enabled``). Off, :func:`instrument` hands the
investigator back untouched and nothing of OpenTelemetry is imported: no tracer, no
processor, no cost per turn. On, it needs the ``tracing`` extra
(``pip install '.[tracing]'``) and exports over OTLP/HTTP to ``tracing.otlp_endpoint``
in the background (a batch processor; a collector that is down costs dropped spans,
never a call).

Where the spans come from: :class:`TracedInvestigator` is the process's
:class:`~bot.core.investigation.Investigator` with its call boundaries instrumented.
Every way of running a call goes through them — text mode (``run_text``), the voice
session (``dialogue`` ... ``conclude``) and calls that never reached a dialogue
(``unreached``) — so the core stays as it is: pure, without I/O and without a hook.

* ``callbot.call`` starts with the dialogue and ends when the call is concluded
  (scored, disposition decided); a dialogue that is never concluded (the process
  raised mid-call) ends as an error when its record is garbage-collected.
  The span is never made *current*: a voice call awaits between turns, and a context
  attached across awaits would leak into other calls. Its parent is whatever span was
  current when the dialogue began.
* ``callbot.turn`` covers one step of the dialogue manager: the opening (index 0) and
  then each callee event (speech, silence, key press, hang-up) with the bot's reply.
  It *is* current while the step runs (synchronous code), so spans of libraries called
  inside it nest under it.

Attributes are categorical only: script, scenario, branch, outcome, band, disposition,
topics, node ids, intents, acts, decisions, counts and latencies. What callees and the
bot *said* is never recorded, nor a phone number, a name or an account number; the
account shows as its masked number (last four digits) at most. Campaign and call ids
come from :func:`call_tags` (set by whoever runs the call).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from bot.core.account import Account
from bot.core.dialogue import BotUtterance, CalleeEvent, DialogueManager, DialogueRecord
from bot.core.investigation import CallResult, Investigator
from bot.core.masking import mask_card
from bot.settings import TracingSettings

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

#: Name of the instrumentation scope (and prefix of every attribute).
SCOPE = "callbot"
CALL_SPAN = "callbot.call"
TURN_SPAN = "callbot.turn"

#: What :func:`configure` needs beyond the API (module -> distribution).
PACKAGES = {
    "opentelemetry.sdk": "opentelemetry-sdk",
    "opentelemetry.exporter.otlp.proto.http": "opentelemetry-exporter-otlp-proto-http",
}
MISSING = "tracing enabled but {} not installed (pip install '.[tracing]')"

AttributeValue = str | bool | int | float | Sequence[str]
_tags: ContextVar[Mapping[str, AttributeValue]] = ContextVar(
    "callbot_call_tags", default=MappingProxyType({})
)


def missing_packages() -> list[str]:
    """The distributions tracing needs that are not installed (none: empty)."""
    import importlib.util

    missing = []
    for module, dist in PACKAGES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            missing.append(dist)
    return missing


@contextlib.contextmanager
def call_tags(**tags: AttributeValue) -> Iterator[None]:
    """Attributes for the call spans started inside this block (this thread or task),
    e.g. ``with call_tags(campaign_id=3, call_id=41): gateway.place(...)``. Each lands
    as ``callbot.<name>``; pass nothing personal."""
    token = _tags.set({**_tags.get(), **tags})
    try:
        yield
    finally:
        _tags.reset(token)


# -- the tracer ----------------------------------------------------------------------------


def configure(settings: TracingSettings) -> Tracer | None:
    """The tracer for ``settings``, or None with tracing off (nothing is imported).
    One provider and exporter per process and configuration; raises RuntimeError when
    tracing is on without the packages (``bot config check`` says so beforehand)."""
    if not settings.enabled:
        return None
    missing = missing_packages()
    if missing:
        raise RuntimeError(MISSING.format(" and ".join(missing)))
    return _tracer(
        settings.otlp_endpoint, settings.service_name, settings.headers.get_secret_value()
    )


#: Providers made by :func:`configure`, for :func:`flush`.
_providers: list[Any] = []


@functools.lru_cache(maxsize=8)
def _tracer(endpoint: str, service_name: str, headers: str) -> Tracer:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # A provider of our own, not the global one: the process's other libraries keep
    # whatever they were given, and tests can build several.
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    exporter = OTLPSpanExporter(endpoint=endpoint or None, headers=parse_headers(headers) or None)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _providers.append(provider)
    return provider.get_tracer(SCOPE)


def parse_headers(text: str) -> dict[str, str]:
    """``"a=1, b=2"`` -> ``{"a": "1", "b": "2"}`` (the OTEL_EXPORTER_OTLP_HEADERS form)."""
    pairs = (item.split("=", 1) for item in text.split(",") if "=" in item)
    return {k.strip(): v.strip() for k, v in pairs if k.strip()}


def flush(timeout_ms: int = 5000) -> bool:
    """Export what the batch processors still hold (tests, a clean shutdown)."""
    return all(p.force_flush(timeout_ms) for p in _providers)


def instrument(
    investigator: Investigator, settings: TracingSettings, tracer: Tracer | None = None
) -> Investigator:
    """``investigator`` with its calls traced when tracing is on (or ``tracer`` given),
    else ``investigator`` itself."""
    tracer = tracer or configure(settings)
    if tracer is None:
        return investigator
    return TracedInvestigator.adopt(investigator, tracer)


# -- the spans -----------------------------------------------------------------------------


def _attr(name: str) -> str:
    return f"{SCOPE}.{name}"


class _Call:
    """One call's span and turn counter (shared by its dialogue and its conclusion)."""

    def __init__(self, tracer: Tracer, account: Account, script_ref: str) -> None:
        from opentelemetry import trace

        self.tracer = tracer
        attributes: dict[str, AttributeValue] = {
            _attr("account"): mask_card(account.account_id),
            _attr("scenario"): account.scenario.value,
            _attr("branch"): account.branch or "",
            _attr("script"): script_ref,
        }
        attributes.update({_attr(k): v for k, v in _tags.get().items()})
        self.span: Span = tracer.start_span(CALL_SPAN, attributes=attributes)
        self.context = trace.set_span_in_context(self.span)
        self.turns = 0

    def turn(self) -> Span:
        span = self.tracer.start_span(
            TURN_SPAN, context=self.context, attributes={_attr("turn.index"): self.turns}
        )
        self.turns += 1
        return span

    def end(self, result: CallResult) -> None:
        record, assessment, decision = result.record, result.assessment, result.decision
        self.span.set_attributes(
            {
                _attr("outcome"): record.outcome.value if record.outcome else "",
                _attr("ended_by"): record.ended_by,
                _attr("identity_confirmed"): record.identity_confirmed,
                _attr("handoff"): record.handoff_requested,
                _attr("turns"): self.turns,
                _attr("refusals"): record.refusals,
                _attr("band"): assessment.band.value if assessment.band else "",
                _attr("score"): round(assessment.score, 4),
                _attr("severe"): assessment.severe,
                _attr("ruleset"): assessment.ruleset_version,
                _attr("disposition"): decision.disposition.value,
                _attr("situation"): decision.situation,
                _attr("needs_review"): decision.needs_review,
                _attr("sampled"): decision.sampled,
            }
        )
        self.span.end()

    def abandon(self) -> None:
        """The dialogue was dropped without a conclusion (the caller raised)."""
        from opentelemetry.trace import Status, StatusCode

        if self.span.is_recording():
            self.span.set_status(Status(StatusCode.ERROR, "call never concluded"))
            self.span.end()


class TracedDialogue(DialogueManager):
    """A :class:`DialogueManager` whose ``start`` and ``handle`` each run in a turn span."""

    _call: _Call

    @classmethod
    def adopt(cls, dm: DialogueManager, call: _Call) -> TracedDialogue:
        """``dm`` itself, traced (its state taken over as it is: it has not started)."""
        traced = cls.__new__(cls)
        traced.__dict__.update(vars(dm))
        traced._call = call
        return traced

    def start(self) -> BotUtterance:
        with self._turn() as span:
            span.set_attribute(_attr("turn.event"), "start")
            utterance = super().start()
            _reply(span, utterance)
            return utterance

    def handle(self, event: CalleeEvent) -> BotUtterance | None:
        with self._turn() as span:
            span.set_attributes(
                {
                    _attr("turn.event"): event.kind.value,
                    _attr("turn.topic"): self.current_topic,
                    _attr("turn.node"): self._node.id if self._node else "",
                    _attr("turn.at_s"): round(event.at, 3),
                    _attr("turn.interrupted"): event.interrupted,
                }
            )
            before = len(self.record.turns)
            utterance = super().handle(event)
            callee = next((t for t in self.record.turns[before:] if t.role == "callee"), None)
            if callee is not None:
                span.set_attribute(_attr("turn.decision"), callee.decision)
                if callee.nlu is not None:
                    nlu = callee.nlu
                    span.set_attributes(
                        {
                            _attr("turn.intent"): nlu.intent.intent.value,
                            _attr("turn.intent_confidence"): round(nlu.intent.confidence, 4),
                            _attr("turn.intent_source"): nlu.intent.source,
                            _attr("turn.acts"): sorted(a.value for a in nlu.reading.acts),
                        }
                    )
            _reply(span, utterance)
            return utterance

    @contextlib.contextmanager
    def _turn(self) -> Iterator[Span]:
        from opentelemetry import trace

        span = self._call.turn()
        started = time.perf_counter()
        # Current only for this synchronous step, so nothing leaks across awaits.
        with trace.use_span(
            span, end_on_exit=False, record_exception=False, set_status_on_exception=False
        ):
            try:
                yield span
            except BaseException as exc:
                _failed(span, exc)
                raise
            finally:
                span.set_attribute(
                    _attr("turn.latency_ms"), round((time.perf_counter() - started) * 1000, 3)
                )
                span.end()


def _failed(span: Span, exc: BaseException) -> None:
    """Mark ``span`` failed with the exception's type only: its message and traceback may
    quote what the callee said."""
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("exception.type", type(exc).__name__)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


def _reply(span: Span, utterance: BotUtterance | None) -> None:
    if utterance is None:
        span.set_attribute(_attr("turn.reply"), "none")
        return
    span.set_attributes(
        {
            _attr("turn.reply"): utterance.kind.value,
            _attr("turn.next_topic"): utterance.topic,
            _attr("turn.next_node"): utterance.node_id,
            _attr("turn.final"): utterance.final,
        }
    )


class TracedInvestigator(Investigator):
    """The investigator with a call span from ``dialogue`` to ``conclude`` and a turn
    span per dialogue step (see the module docstring)."""

    _tracer: Tracer
    _calls: dict[int, _Call]
    _lock: threading.Lock

    @classmethod
    def adopt(cls, investigator: Investigator, tracer: Tracer) -> TracedInvestigator:
        """``investigator``'s loaded scripts, rules and NLU, traced (nothing reloaded)."""
        traced = cls.__new__(cls)
        traced.__dict__.update(vars(investigator))
        traced._tracer = tracer
        traced._calls = {}
        traced._lock = threading.Lock()
        return traced

    def dialogue(self, account: Account, script_id: str | None = None) -> DialogueManager:
        dm = super().dialogue(account, script_id)
        call = _Call(self._tracer, account, dm.record.script_ref)
        key = id(dm.record)
        with self._lock:
            self._calls[key] = call
        # not at exit: the provider may be shut down by then (a span ended there is noise)
        weakref.finalize(dm.record, self._drop, key).atexit = False
        return TracedDialogue.adopt(dm, call)

    def _drop(self, key: int) -> None:
        with self._lock:
            call = self._calls.pop(key, None)
        if call is not None:
            call.abandon()

    def conclude(
        self,
        account: Account,
        record: DialogueRecord,
        *,
        attempts_left: bool = True,
        call_key: str = "",
    ) -> CallResult:
        with self._lock:
            call = self._calls.pop(id(record), None)
        if call is None:  # a call that never reached a dialogue (no answer, busy...)
            call = _Call(self._tracer, account, record.script_ref)
        try:
            result = super().conclude(
                account, record, attempts_left=attempts_left, call_key=call_key
            )
        except BaseException as exc:
            _failed(call.span, exc)
            call.span.end()
            raise
        call.end(result)
        return result


__all__ = [
    "CALL_SPAN",
    "MISSING",
    "PACKAGES",
    "TURN_SPAN",
    "TracedDialogue",
    "TracedInvestigator",
    "call_tags",
    "configure",
    "flush",
    "instrument",
    "missing_packages",
]
