"""What operators deploy from ``dashboards/``: the Grafana JSON is what
``dashboards/build.py`` writes, and every PromQL expression in it and in the alert rules
names only metrics (and labels) the bot exports; the alert rates match the monitor's."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import Metric

from bot import metrics
from bot.store.db import make_engine
from bot.store.migrate import upgrade
from bot.web.config import MonitorThresholds

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "dashboards"
NAME = re.compile(r"\b(callbot_[a-z0-9_]+)\b")
SELECTOR = re.compile(r"\b(callbot_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r"([a-z_]+)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|on)\s*\(([^)]*)\)")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboards_build", DASHBOARDS / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def exported(tmp_path: Path) -> dict[str, set[str]]:
    """Every series name the bot can export, with the labels it carries."""
    names: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if isinstance(value, Counter | Gauge | Histogram):
            kind = value._type  # prometheus_client keeps the type here
            for suffix in SUFFIXES[kind]:
                labels = set(value._labelnames) | ({"le"} if suffix == "_bucket" else set())
                names[value._name + suffix] = labels
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    families: list[Metric] = list(metrics.DatabaseCollector(make_engine(url)).collect())
    assert len(families) > 5, "the collector could not read the database"
    for family in families:
        names[family.name] = set(getattr(family, "_labelnames", ()))
    return names


def grafana_exprs() -> Iterator[tuple[str, str]]:
    for path in sorted((DASHBOARDS / "grafana").glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        for var in board["templating"]["list"]:
            if var.get("query", "").startswith("label_values"):
                yield f"{path.name} variable {var['name']}", var["query"]
        for panel in board["panels"]:
            for target in panel["targets"]:
                yield f"{path.name} / {panel['title']}", target["expr"]


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((DASHBOARDS / "prometheus" / "alerts.yml").read_text("utf-8"))
    return [rule for group in groups["groups"] for rule in group["rules"]]


def all_exprs() -> list[tuple[str, str]]:
    return [*grafana_exprs(), *((f"alert {r['alert']}", r["expr"]) for r in alert_rules())]


def test_the_grafana_files_are_what_the_builder_writes() -> None:
    build = build_module()
    files = {p.name for p in (DASHBOARDS / "grafana").glob("*.json")}
    assert files == {f"{d.uid}.json" for d in build.DASHBOARDS}
    for d in build.DASHBOARDS:
        on_disk = (DASHBOARDS / "grafana" / f"{d.uid}.json").read_text(encoding="utf-8")
        assert on_disk == build.render(d), f"run python dashboards/build.py ({d.uid})"


def test_dashboards_are_valid_grafana_models() -> None:
    for path in (DASHBOARDS / "grafana").glob("*.json"):
        board = json.loads(path.read_text(encoding="utf-8"))
        assert board["uid"] and board["title"] and board["panels"]
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        for p in board["panels"]:
            pos = p["gridPos"]
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, p["title"]
            assert p["targets"] and all(t["expr"] for t in p["targets"])


def test_every_expression_names_only_exported_metrics_and_labels(tmp_path: Path) -> None:
    names = exported(tmp_path)
    problems = []
    for where, expr in all_exprs():
        used = set(NAME.findall(expr))
        assert used, f"{where}: no callbot metric in {expr}"
        for name in used - names.keys():
            problems.append(f"{where}: {name} is not exported")
        for name, matchers in SELECTOR.findall(expr):
            for label in set(MATCHER.findall(matchers)) - names.get(name, set()):
                problems.append(f"{where}: {name} has no label {label}")
        known = set().union(*(names.get(n, set()) for n in used))
        for grouping in GROUPING.findall(expr):
            for label in {x.strip() for x in grouping.split(",") if x.strip()} - known:
                problems.append(f"{where}: no metric in it has the label {label}")
    assert not problems, "\n".join(problems)


def test_the_checker_sees_a_metric_that_does_not_exist(tmp_path: Path) -> None:
    names = exported(tmp_path)
    assert "callbot_calls_total" in names and "callbot_calls_totl" not in names
    assert names["callbot_calls_total"] >= {"outcome", "campaign"}


@pytest.mark.parametrize(
    ("alert", "outcome", "threshold"),
    [
        ("CallbotFailureRateHigh", "failed", MonitorThresholds().failure_rate),
        ("CallbotRefusalRateHigh", "refused", MonitorThresholds().refusal_rate),
    ],
)
def test_alert_rates_match_the_monitor(alert: str, outcome: str, threshold: float) -> None:
    rule = next(r for r in alert_rules() if r["alert"] == alert)
    expr = " ".join(rule["expr"].split())
    assert f'outcome="{outcome}"' in expr
    rate = re.search(r">=\s*(0\.\d+)", expr)
    calls = re.search(r">=\s*(\d+)\s*$", expr)
    assert rate and float(rate.group(1)) == pytest.approx(threshold)
    assert calls and int(calls.group(1)) == MonitorThresholds().min_calls


def test_every_alert_says_what_to_do() -> None:
    rules = alert_rules()
    assert {"CallbotConnectRateCollapsed", "CallbotCampaignStalled"} <= {r["alert"] for r in rules}
    for r in rules:
        assert r["labels"]["severity"] in {"info", "warning", "critical"}
        assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]


def test_connected_means_the_same_everywhere() -> None:
    """Each "not connected" outcome pattern in the dashboards and alerts is the vocabulary's
    NOT_CONNECTED, as in the worker's status line, the monitor and campaign status."""
    from bot.core.vocab import NOT_CONNECTED

    patterns = {
        m.group(1) for _, expr in all_exprs() for m in re.finditer(r'outcome!~"([^"]+)"', expr)
    }
    assert patterns and {frozenset(p.split("|")) for p in patterns} == {frozenset(NOT_CONNECTED)}


def test_connect_and_stall_alerts_match_the_monitor() -> None:
    t = MonitorThresholds()
    rules = {r["alert"]: " ".join(r["expr"].split()) for r in alert_rules()}
    floor = re.search(r"<\s*(0\.\d+)", rules["CallbotConnectRateCollapsed"])
    assert floor and float(floor.group(1)) == pytest.approx(t.connect_rate_min)
    assert f"[{t.stall_minutes}m]" in rules["CallbotCampaignStalled"]
