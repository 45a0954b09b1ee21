"""The monitor's and feedback's queries are SQLAlchemy Core: no SQL text in the modules,
and timestamps bound as the column's type compare exactly on both engines (SQLite keeps
them as UTC text: an aware time in another zone must still cut at the same instant)."""

from __future__ import annotations

import ast
import datetime as dt
import inspect
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.web import stats, stats_sql
from bot.web.stats import Scope, call_figures, hourly_calls, queue_counts, window_rates
from tests.web.test_monitor import NOW, add_calls, add_campaign, add_items

SHANGHAI = ZoneInfo("Asia/Shanghai")
US = dt.timedelta(microseconds=1)


def test_no_sql_text_in_the_stats_modules() -> None:
    for module in (stats, stats_sql):
        tree = ast.parse(inspect.getsource(module))
        calls = [
            node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (getattr(node.func, "attr", None) or getattr(node.func, "id", None))
            in ("text", "literal_column", "exec_driver_sql")
        ]
        assert calls == [], (module.__name__, calls)


def test_timestamps_cut_at_the_same_instant_on_both_engines(engine: Engine) -> None:
    since = NOW - dt.timedelta(hours=2)
    cid = add_campaign(engine, "boundary")
    # One call a microsecond before ``since``, one at it, one a microsecond after.
    add_calls(engine, cid, ["completed", "failed", "refused"], start=since - US, every=US)
    since_local = since.astimezone(SHANGHAI)  # the same instant, written at +08:00
    with Session(engine) as s:
        for at in (since, since_local):
            figures = call_figures(s, Scope(cid, at))
            assert figures[cid].calls == 2 and figures[cid].outcomes == {"failed": 1, "refused": 1}
            assert window_rates(s, 10, Scope(None, at)).calls == 2
        hours = {h.hour: h for h in hourly_calls(s, NOW.astimezone(SHANGHAI), cid)}
        assert hours[since].calls == 2 and hours[since].failed == 1
        assert hours[since - dt.timedelta(hours=1)].calls == 1


def test_a_lease_expiring_at_now_is_not_stale(engine: Engine) -> None:
    cid = add_campaign(engine, "leases")
    add_items(engine, cid, [("in_progress", NOW - US), ("in_progress", NOW), ("queued", None)])
    with Session(engine) as s:
        for now in (NOW, NOW.astimezone(SHANGHAI)):
            q = queue_counts(s, now, cid)[cid]
            assert (q.in_progress, q.stale, q.queued) == (2, 1, 1)
