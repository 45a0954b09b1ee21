"""OpenTelemetry traces (bot/tracing.py): a call span with a child span per dialogue
turn, categorical attributes only (never a number, a name or what was said), exported
over OTLP/HTTP to a real (local) collector; and with tracing off, nothing at all."""

from __future__ import annotations

import dataclasses
import gc
import gzip
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import select

pytest.importorskip("opentelemetry.sdk", reason="the tracing extra: pip install '.[tracing]'")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from bot import tracing
from bot.config_check import NO_GATEWAY, Needs, check
from bot.core.dialogue import CalleeEvent
from bot.core.investigation import Investigator
from bot.core.vocab import Outcome
from bot.runtime import build_investigator
from bot.settings import Settings, TracingSettings
from bot.sim.callee import PersonaCallee
from bot.tracing import CALL_SPAN, TURN_SPAN, TracedInvestigator, call_tags, instrument
from tests.conftest import make_account

ACCOUNT = make_account()
#: A callee who says their name and number, and stays silent once.
ANSWERS: dict[str, str | None] = {
    "identity": "是我，我是李娜，手机13800000002",
    "card_purpose": "工资卡，平时自己用",
    "fund_source": None,
    "card_custody": "自己保管的",
    "counterparty": "王强是我朋友，借给他的钱还回来了",
    "occupation": "我在深圳做会计",
    "default": "好的",
}
#: Nothing of these may appear in any attribute of any span.
PERSONAL = [
    ACCOUNT.account_id,
    ACCOUNT.phone,
    ACCOUNT.phone.removeprefix("+86"),
    ACCOUNT.name,
    "王强",
    *(a for a in ANSWERS.values() if a),
]


@pytest.fixture(scope="module")
def plain() -> Investigator:
    # Rules-only NLU keeps this fast; tracing does not care which NLU reads the answers.
    return build_investigator(Settings(intent_model_enabled=False))


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def traced(plain: Investigator, exporter: InMemorySpanExporter) -> TracedInvestigator:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    investigator = instrument(plain, TracingSettings(), tracer=provider.get_tracer("test"))
    assert isinstance(investigator, TracedInvestigator)
    return investigator


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def attr(span: ReadableSpan, name: str) -> Any:
    assert span.attributes is not None
    return span.attributes.get(f"callbot.{name}")


def test_a_text_call_is_one_call_span_with_a_child_per_turn(
    traced: TracedInvestigator, exporter: InMemorySpanExporter
) -> None:
    with call_tags(campaign_id=7, call_id=41):
        result = traced.run_text(ACCOUNT, PersonaCallee(ANSWERS))
    spans = exporter.get_finished_spans()
    [call] = by_name(spans, CALL_SPAN)
    turns = by_name(spans, TURN_SPAN)
    assert len(spans) == 1 + len(turns)

    # the opening, then one step per callee event the dialogue consumed
    callee_events = [t for t in result.record.turns if t.role == "callee"]
    assert len(turns) == 1 + len(callee_events)
    assert [attr(t, "turn.index") for t in turns] == list(range(len(turns)))
    assert attr(turns[0], "turn.event") == "start"
    assert [attr(t, "turn.event") for t in turns[1:]] == [t.event for t in callee_events]
    assert [attr(t, "turn.topic") for t in turns[1:]] == [t.topic for t in callee_events]
    assert [attr(t, "turn.decision") for t in turns[1:]] == [t.decision for t in callee_events]
    assert "silence" in [attr(t, "turn.event") for t in turns]  # fund_source: no answer
    assert all(attr(t, "turn.latency_ms") >= 0 for t in turns)
    speech = [t for t in turns if attr(t, "turn.event") == "speech"]
    assert speech and all(attr(t, "turn.intent") for t in speech)

    # every turn is a child of the call, in one trace, within it
    assert call.context is not None
    for t in turns:
        assert t.parent is not None and t.parent.span_id == call.context.span_id
        assert t.context is not None and t.context.trace_id == call.context.trace_id
        assert call.start_time is not None and t.start_time is not None
        assert call.end_time is not None and t.end_time is not None
        assert call.start_time <= t.start_time <= t.end_time <= call.end_time

    assert result.record.outcome is not None and result.assessment.band is not None
    assert attr(call, "outcome") == result.record.outcome.value
    assert attr(call, "ended_by") == result.record.ended_by
    assert attr(call, "band") == result.assessment.band.value
    assert attr(call, "disposition") == result.decision.disposition.value
    assert attr(call, "needs_review") == result.decision.needs_review
    assert attr(call, "branch") == "shenzhen"
    assert attr(call, "scenario") == "suspicious_txn"
    assert attr(call, "script") == result.record.script_ref
    assert attr(call, "turns") == len(turns)
    assert attr(call, "campaign_id") == 7 and attr(call, "call_id") == 41
    assert attr(call, "account") == "************0002"  # masked, last four at most
    assert call.status.status_code is StatusCode.UNSET

    # nothing personal and nothing said, in any attribute of any span
    values = json.dumps([dict(s.attributes or {}) for s in spans], ensure_ascii=False)
    for secret in PERSONAL:
        assert secret not in values


def test_a_call_that_never_reached_a_dialogue_is_a_call_span_without_turns(
    traced: TracedInvestigator, exporter: InMemorySpanExporter
) -> None:
    traced.unreached(ACCOUNT, Outcome.NO_ANSWER, "gateway", attempts_left=True)
    [call] = exporter.get_finished_spans()
    assert call.name == CALL_SPAN
    assert attr(call, "outcome") == "no_answer" and attr(call, "turns") == 0
    assert attr(call, "disposition")


def test_the_voice_path_dialogue_then_conclude(
    traced: TracedInvestigator, exporter: InMemorySpanExporter
) -> None:
    """The voice session drives the dialogue itself and concludes it later."""
    dm = traced.dialogue(ACCOUNT)
    dm.start()
    dm.handle(CalleeEvent.speech("是我", 3.0))
    dm.handle(CalleeEvent.hangup(5.0))
    # each turn ends with its step, the call only when it is concluded
    assert [s.name for s in exporter.get_finished_spans()] == [TURN_SPAN] * 3
    result = traced.conclude(ACCOUNT, dm.record, attempts_left=False, call_key="k1")
    spans = exporter.get_finished_spans()
    turns = by_name(spans, TURN_SPAN)
    [call] = by_name(spans, CALL_SPAN)
    assert [attr(t, "turn.event") for t in turns] == ["start", "speech", "hangup"]
    assert attr(turns[-1], "turn.reply") == "none"
    assert attr(call, "outcome") == result.record.outcome == "hung_up"


def test_a_dialogue_dropped_without_conclusion_ends_as_an_error(
    traced: TracedInvestigator, exporter: InMemorySpanExporter
) -> None:
    dm = traced.dialogue(ACCOUNT)
    dm.start()
    del dm
    gc.collect()
    [call] = by_name(exporter.get_finished_spans(), CALL_SPAN)
    assert call.status.status_code is StatusCode.ERROR


class _Broken:
    def analyze(self, text: str, context: object) -> object:
        raise ValueError(f"cannot read {text}")


def test_a_failing_turn_records_the_type_not_the_message(
    traced: TracedInvestigator, exporter: InMemorySpanExporter
) -> None:
    dm = traced.dialogue(ACCOUNT)
    dm.analyzer = _Broken()  # type: ignore[assignment]
    dm.start()
    with pytest.raises(ValueError):
        dm.handle(CalleeEvent.speech("我是李娜", 2.0))
    failed = by_name(exporter.get_finished_spans(), TURN_SPAN)[-1]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None and failed.attributes["exception.type"] == "ValueError"
    assert failed.events == ()  # no exception event: its message quotes the callee
    assert "李娜" not in json.dumps(dict(failed.attributes), ensure_ascii=False)


# -- off by default ------------------------------------------------------------------------


def test_off_by_default_the_investigator_is_untouched(plain: Investigator) -> None:
    assert Settings().tracing.enabled is False
    assert tracing.configure(TracingSettings()) is None
    assert instrument(plain, TracingSettings()) is plain
    assert type(plain) is Investigator  # build_investigator with the defaults


def test_off_nothing_of_opentelemetry_is_imported() -> None:
    code = (
        "import sys\n"
        "from bot.runtime import build_investigator\n"
        "from bot.settings import TracingSettings\n"
        "from bot.tracing import configure, instrument\n"
        "assert configure(TracingSettings()) is None\n"
        "marker = object()\n"
        "assert instrument(marker, TracingSettings()) is marker\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# -- bot config check ------------------------------------------------------------------------

#: Tracing is checked with the NLU (the commands that run calls); the rest left out.
ONLY_TRACING = Needs(
    database=False, nlu=True, delivery=False, voice=False, gateway=NO_GATEWAY, web=False
)


def tracing_findings(settings: Settings) -> list[str]:
    return [f.line() for f in check(settings, ONLY_TRACING) if "TRACING" in f.setting]


def test_config_check_enabled_without_the_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    on = Settings(tracing=TracingSettings(enabled=True))
    assert tracing_findings(on) == []  # installed here
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "opentelemetry.sdk" else real(name, *a),
    )
    [line] = tracing_findings(on)
    assert "tracing enabled but opentelemetry-sdk not installed (pip install '.[tracing]')" in line
    assert line.startswith("BOT_TRACING__ENABLED")
    with pytest.raises(RuntimeError, match="opentelemetry-sdk not installed"):
        tracing.configure(on.tracing)
    assert tracing_findings(Settings()) == []  # off: nothing checked
    # the dashboard runs no calls: it starts whatever tracing says
    web = dataclasses.replace(ONLY_TRACING, nlu=False, web=True)
    assert [f for f in check(on, web) if "TRACING" in f.setting] == []


def test_config_check_refuses_an_endpoint_that_is_not_a_url() -> None:
    bad = Settings(tracing=TracingSettings(enabled=True, otlp_endpoint="collector:4318"))
    [line] = tracing_findings(bad)
    assert line.startswith("BOT_TRACING__OTLP_ENDPOINT")


def test_headers_parse_like_otel_exporter_otlp_headers() -> None:
    assert tracing.parse_headers("a=1, b = x=y,junk,") == {"a": "1", "b": "x=y"}


# -- OTLP/HTTP to a collector ------------------------------------------------------------------


class _Collector(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()
        self.wfile.write(b"")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, dict[str, str], bytes]]]]:
    received: list[tuple[str, dict[str, str], bytes]] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_spans_reach_an_otlp_http_collector(
    collector: tuple[str, list[tuple[str, dict[str, str], bytes]]],
) -> None:
    url, received = collector
    settings = TracingSettings(
        enabled=True,
        otlp_endpoint=url,
        service_name="callbot-test",
        headers=SecretStr("x-collector-token=t0ken"),
    )
    # the worker's way: build_investigator with tracing on, the real exporter
    investigator = build_investigator(Settings(intent_model_enabled=False, tracing=settings))
    assert isinstance(investigator, TracedInvestigator)
    result = investigator.run_text(ACCOUNT, PersonaCallee(ANSWERS))
    assert tracing.flush()

    assert received, "the collector got nothing"
    names: list[str] = []
    services: set[str] = set()
    for path, headers, body in received:
        assert path == "/v1/traces"
        assert headers["content-type"] == "application/x-protobuf"
        assert headers["x-collector-token"] == "t0ken"
        request = ExportTraceServiceRequest.FromString(body)
        for rs in request.resource_spans:
            services |= {
                a.value.string_value for a in rs.resource.attributes if a.key == "service.name"
            }
            for ss in rs.scope_spans:
                names += [s.name for s in ss.spans]
    assert services == {"callbot-test"}
    assert names.count(CALL_SPAN) == 1
    assert names.count(TURN_SPAN) == 1 + sum(t.role == "callee" for t in result.record.turns)
    for _, _, body in received:
        for secret in PERSONAL:
            assert secret.encode() not in body


def test_the_worker_tags_each_call_span_with_its_campaign_and_call(
    engine: Engine, traced: TracedInvestigator, exporter: InMemorySpanExporter
) -> None:
    from bot.campaign.worker import SimulatedGateway, Worker
    from bot.store.db import session_scope
    from bot.store.models import CallRow
    from tests.campaign.factories import MONDAY_10_LOCAL, make_campaign

    campaign_id, _ = make_campaign(engine, "traced", n=2, max_attempts=1)
    worker = Worker(
        engine, traced, SimulatedGateway({}), poll_s=0.01, clock=lambda: MONDAY_10_LOCAL
    )
    worker.run(until_idle=True)
    calls = by_name(exporter.get_finished_spans(), CALL_SPAN)
    with session_scope(engine) as s:
        stored = {c.id for c in s.exec(select(CallRow)).all()}
    assert len(calls) == 2 and {attr(c, "call_id") for c in calls} == stored
    assert {attr(c, "campaign_id") for c in calls} == {campaign_id}
    assert {attr(c, "attempt") for c in calls} == {1}
    assert {attr(c, "outcome") for c in calls} == {"no_answer"}
