"""Builds the Grafana dashboards in ``dashboards/grafana/`` from the panel lists below.

Run ``python dashboards/build.py`` after changing a panel; ``tests/test_dashboards.py``
fails when the JSON files differ from what this writes, and when any expression (here or
in ``prometheus/alerts.yml``) names a metric the bot does not export.

Every dashboard has a ``datasource`` variable (pick the Prometheus that scrapes the bot)
and a ``campaign`` variable (multi-select, from ``callbot_calls_total``). Import a file
in Grafana (Dashboards, New, Import) or provision the folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "grafana"

#: Panels are laid out in rows of this many columns on Grafana's 24-column grid.
WIDTH = {"stat": 6, "timeseries": 12, "bargauge": 12}
HEIGHT = {"stat": 4, "timeseries": 8, "bargauge": 8}

CAMPAIGN = 'campaign=~"$campaign"'
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Panel:
    title: str
    exprs: tuple[tuple[str, str], ...]  # (PromQL, legend)
    kind: str = "timeseries"
    unit: str = "short"
    description: str = ""
    #: Colour steps: (value, colour); the first value is the base (None).
    thresholds: tuple[tuple[float | None, str], ...] = ((None, "green"),)


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: list[Panel] = field(default_factory=list)


def _share(numerator: str, denominator: str) -> str:
    return f"sum({numerator}) / clamp_min(sum({denominator}), 1)"


def _calls(match: str = "", window: str = RATE) -> str:
    labels = ", ".join(x for x in (CAMPAIGN, match) if x)
    return f"increase(callbot_calls_total{{{labels}}}[{window}])"


def _quantile(q: float, metric: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket[{RATE}])))"


CONNECTED = 'outcome!~"no_answer|busy|failed"'  # bot.core.vocab.NOT_CONNECTED

CAMPAIGNS = Dashboard(
    "callbot-campaigns",
    "Call bot: campaigns",
    "Calls by outcome, band and disposition; connect, refusal and failure rates; the dial "
    "queue; active calls against the workers' limit.",
    [
        Panel("Calls per hour", (("sum(" + _calls(window="1h") + ")", "calls"),), "stat"),
        Panel(
            "Connect rate (1 h)",
            ((_share(_calls(CONNECTED, "1h"), _calls(window="1h")), "connected"),),
            "stat",
            "percentunit",
            "Calls answered by someone, of all calls placed in the last hour.",
            ((None, "red"), (0.2, "orange"), (0.4, "green")),
        ),
        Panel(
            "Failure rate (1 h)",
            ((_share(_calls('outcome="failed"', "1h"), _calls(window="1h")), "failed"),),
            "stat",
            "percentunit",
            "Alert threshold: 10 % (the monitor's failure_rate).",
            ((None, "green"), (0.05, "orange"), (0.10, "red")),
        ),
        Panel(
            "Refusal rate (1 h)",
            ((_share(_calls('outcome="refused"', "1h"), _calls(window="1h")), "refused"),),
            "stat",
            "percentunit",
            "Alert threshold: 30 % (the monitor's refusal_rate).",
            ((None, "green"), (0.2, "orange"), (0.3, "red")),
        ),
        Panel(
            "Calls by outcome",
            (("sum by (outcome) (" + _calls() + ")", "{{outcome}}"),),
        ),
        Panel(
            "Calls by risk band",
            (("sum by (band) (" + _calls() + ")", "{{band}}"),),
        ),
        Panel(
            "Dispositions",
            (("sum by (disposition) (" + _calls() + ")", "{{disposition}}"),),
        ),
        Panel(
            "Active calls and the limit",
            (
                ("sum(callbot_active_calls)", "active"),
                ("sum(callbot_call_concurrency_limit)", "limit"),
            ),
        ),
        Panel(
            "Dial queue: due now",
            (
                (
                    "sum by (campaign) (callbot_campaign_queue_depth{" + CAMPAIGN + "})",
                    "{{campaign}}",
                ),
            ),
        ),
        Panel(
            "Dial queue: longest wait",
            (
                (
                    "max by (campaign) (callbot_campaign_queue_oldest_due_seconds{"
                    + CAMPAIGN
                    + "})",
                    "{{campaign}}",
                ),
            ),
            unit="s",
        ),
        Panel(
            "Calls by branch",
            (
                (
                    "sum by (branch) (increase(callbot_calls_by_branch_total[" + RATE + "]))",
                    "{{branch}}",
                ),
            ),
            "bargauge",
        ),
        Panel(
            "Outbox",
            (
                ('sum(callbot_outbox_items{state="pending"})', "pending"),
                ('sum(callbot_outbox_items{state="dead"})', "dead"),
                (
                    "sum by (result) (rate(callbot_outbox_deliveries_total[" + RATE + "]))",
                    "{{result}}/s",
                ),
            ),
        ),
    ],
)

VOICE = Dashboard(
    "callbot-voice",
    "Call bot: voice quality",
    "Turn latency (end of the callee's speech to the bot's first audio), Whisper decode "
    "time, speech errors.",
    [
        Panel(
            "Turn latency p50",
            ((_quantile(0.5, "callbot_turn_latency_ms"), "p50"),),
            "stat",
            "ms",
            "",
            ((None, "green"), (600, "orange"), (900, "red")),
        ),
        Panel(
            "Turn latency p95",
            ((_quantile(0.95, "callbot_turn_latency_ms"), "p95"),),
            "stat",
            "ms",
            "",
            ((None, "green"), (900, "orange"), (1200, "red")),
        ),
        Panel(
            "Whisper decode p95",
            ((_quantile(0.95, "callbot_whisper_decode_ms"), "p95"),),
            "stat",
            "ms",
            "",
            ((None, "green"), (400, "orange"), (800, "red")),
        ),
        Panel(
            "Speech errors (1 h)",
            (("sum(increase(callbot_speech_errors_total[1h]))", "errors"),),
            "stat",
            "short",
            "",
            ((None, "green"), (1, "orange"), (10, "red")),
        ),
        Panel(
            "Turn latency",
            (
                (_quantile(0.5, "callbot_turn_latency_ms"), "p50"),
                (_quantile(0.95, "callbot_turn_latency_ms"), "p95"),
                (_quantile(0.99, "callbot_turn_latency_ms"), "p99"),
            ),
            unit="ms",
        ),
        Panel(
            "Whisper decode",
            (
                (_quantile(0.5, "callbot_whisper_decode_ms"), "p50"),
                (_quantile(0.95, "callbot_whisper_decode_ms"), "p95"),
            ),
            unit="ms",
        ),
        Panel(
            "Speech errors by component",
            (
                (
                    "sum by (component) (rate(callbot_speech_errors_total[" + RATE + "]))",
                    "{{component}}",
                ),
            ),
        ),
        Panel(
            "Active calls",
            (("sum(callbot_active_calls)", "active"),),
        ),
    ],
)

REVIEW = Dashboard(
    "callbot-review",
    "Call bot: review desk",
    "The review queue: how many items wait, how long the oldest has waited, how often "
    "reviewers agree with the bot.",
    [
        Panel(
            "Open items",
            (('sum(callbot_review_queue_depth{state="open"})', "open"),),
            "stat",
            "short",
            "",
            ((None, "green"), (200, "orange"), (1000, "red")),
        ),
        Panel(
            "Claimed items",
            (('sum(callbot_review_queue_depth{state="claimed"})', "claimed"),),
            "stat",
        ),
        Panel(
            "Oldest open item",
            (("max(callbot_review_queue_oldest_open_seconds)", "age"),),
            "stat",
            "s",
            "SLA: 24 h.",
            ((None, "green"), (14400, "orange"), (86400, "red")),
        ),
        Panel(
            "Metrics can read the database",
            (("min(callbot_metrics_database_up)", "up"),),
            "stat",
            "short",
            "",
            ((None, "red"), (1, "green")),
        ),
        Panel(
            "Review queue",
            (("sum by (state) (callbot_review_queue_depth)", "{{state}}"),),
        ),
        Panel(
            "Oldest open item",
            (("max(callbot_review_queue_oldest_open_seconds)", "age"),),
            unit="s",
        ),
        Panel(
            "Agreement with the bot, random sample (7 days)",
            (('max(callbot_review_agreement_ratio{reason="sample"})', "sample"),),
            "stat",
            "percentunit",
            "Share of verdicts on randomly sampled calls that agreed with the bot: the "
            "unbiased estimate of how often it judges as a reviewer would.",
            ((None, "red"), (0.8, "orange"), (0.9, "green")),
        ),
        Panel(
            "Verdicts by reason (7 days)",
            (("sum by (reason, verdict) (callbot_review_verdicts)", "{{reason}} {{verdict}}"),),
        ),
        Panel(
            "Calls not cleared, by band (most go to review)",
            (("sum by (band) (" + _calls('disposition!="clear"') + ")", "{{band}}"),),
        ),
    ],
)

DASHBOARDS = (CAMPAIGNS, VOICE, REVIEW)


def _panel(n: int, p: Panel, x: int, y: int) -> dict[str, Any]:
    return {
        "id": n,
        "type": p.kind,
        "title": p.title,
        "description": p.description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": x, "y": y, "w": WIDTH[p.kind], "h": HEIGHT[p.kind]},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "expr": expr,
                "legendFormat": legend,
            }
            for i, (expr, legend) in enumerate(p.exprs)
        ],
        "fieldConfig": {
            "defaults": {
                "unit": p.unit,
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"value": v, "color": c} for v, c in p.thresholds],
                },
            },
            "overrides": [],
        },
        "options": {},
    }


def _layout(panels: list[Panel]) -> list[dict[str, Any]]:
    out, x, y, row_h = [], 0, 0, 0
    for n, p in enumerate(panels, start=1):
        w = WIDTH[p.kind]
        if x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        out.append(_panel(n, p, x, y))
        x, row_h = x + w, max(row_h, HEIGHT[p.kind])
    return out


def dashboard_json(d: Dashboard) -> dict[str, Any]:
    """The Grafana dashboard model of ``d``."""
    return {
        "uid": d.uid,
        "title": d.title,
        "description": d.description,
        "tags": ["callbot"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                {
                    "name": "campaign",
                    "type": "query",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": "label_values(callbot_calls_total, campaign)",
                    "multi": True,
                    "includeAll": True,
                    "allValue": ".*",
                    "current": {"text": "All", "value": "$__all"},
                },
            ]
        },
        "panels": _layout(d.panels),
    }


def render(d: Dashboard) -> str:
    return json.dumps(dashboard_json(d), ensure_ascii=False, indent=2) + "\n"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for d in DASHBOARDS:
        (OUT / f"{d.uid}.json").write_text(render(d), encoding="utf-8")


if __name__ == "__main__":
    main()
