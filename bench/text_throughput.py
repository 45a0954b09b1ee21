"""Text-mode throughput: dialogue + NLU + scoring + policy, one process on one core.

Runs N synthetic calls through the same :class:`~bot.core.investigation.Investigator` that
real calls use and reports calls per second, calls per core-hour and per-call latency
percentiles, with the NLU result cache on and off, in one run (these machines are noisy,
so compare figures from the same run only).

    python bench/text_throughput.py --n 3000 [--seed 1] [--json reports/bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any


def _pin_one_core() -> None:
    """One core, one torch thread: the target is stated per core-hour."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    import torch

    torch.set_num_threads(1)


def _run(n: int, seed: int, cache: bool) -> dict[str, Any]:
    from bot.runtime import build_investigator
    from bot.settings import Settings
    from bot.sim.callee import PersonaCallee
    from bot.sim.personas import Persona
    from bot.sim.synth import generate

    investigator = build_investigator(Settings(nlu_cache_size=4096 if cache else 0))
    cases = [Persona.from_dict(d).to_case() for d in generate(n, seed)]
    # Warm-up: first calls pay for lazy loading (spaCy pipeline, torch kernels).
    for case in cases[:20]:
        investigator.run_text(case.account, PersonaCallee(case.answers))
    latencies = []
    turns = 0
    started = time.perf_counter()
    for case in cases:
        t0 = time.perf_counter()
        result = investigator.run_text(case.account, PersonaCallee(case.answers))
        latencies.append((time.perf_counter() - t0) * 1000)
        turns += sum(1 for t in result.record.turns if t.role == "callee")
    elapsed = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100)
    return {
        "nlu_cache": cache,
        "calls": n,
        "seconds": round(elapsed, 2),
        "calls_per_second": round(n / elapsed, 1),
        "calls_per_core_hour": round(n / elapsed * 3600),
        "callee_turns_per_call": round(turns / n, 2),
        "ms_per_call": {"p50": round(q[49], 2), "p95": round(q[94], 2), "p99": round(q[98], 2)},
    }


def _answers() -> list[tuple[str, str]]:
    """Every answer of the evaluation personas (blind-written, varied), with its topic."""
    from bot.settings import REPO_ROOT
    from bot.sim.personas import load_dir

    out = []
    for split in ("tuning", "heldout"):
        personas, _ = load_dir(REPO_ROOT / "eval_personas" / split)
        out += [(t.value, a) for p in personas for t, a in p.answers.items() if a]
    return out


def _per_answer() -> dict[str, Any]:
    """Understanding one answer (normalise, intent, entities, reading), uncached, one core:
    the work a turn waits for; and the entity extraction alone (spaCy rules + LAC)."""
    from bot.runtime import build_investigator
    from bot.settings import Settings
    from nlu.normalize import normalize
    from nlu.types import NluContext

    analyzer = build_investigator(Settings(nlu_cache_size=0)).analyzer
    answers = _answers()
    for topic, text in answers[:50]:  # warm-up
        analyzer.analyze(text, NluContext(topic=topic))
    times, extraction = [], []
    for topic, text in answers:
        context = NluContext(topic=topic, known_names=("张伟",))
        t0 = time.perf_counter()
        analyzer.analyze(text, context)
        t1 = time.perf_counter()
        analyzer.extractor.extract(normalize(text), context)
        extraction.append((time.perf_counter() - t1) * 1000)
        times.append((t1 - t0) * 1000)
    q = statistics.quantiles(times, n=100)
    e = statistics.quantiles(extraction, n=100)
    return {
        "answers": len(answers),
        "ms_per_answer": {"p50": round(q[49], 2), "p95": round(q[94], 2), "p99": round(q[98], 2)},
        "ms_per_entity_extraction": {"p50": round(e[49], 2), "p95": round(e[94], 2)},
        "target_p95_ms": 50,
        "meets_target": q[94] <= 50,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    _pin_one_core()
    rows = [_run(args.n, args.seed, cache=False), _run(args.n, args.seed, cache=True)]
    target = 100_000
    for r in rows:
        r["target_calls_per_core_hour"] = target
        r["meets_target"] = r["calls_per_core_hour"] >= target
        print(json.dumps(r, ensure_ascii=False))
    print(f"cache speed-up: {rows[1]['calls_per_second'] / rows[0]['calls_per_second']:.2f}x")
    answer = _per_answer()
    print(json.dumps(answer, ensure_ascii=False))
    rows.append(answer)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
