#!/usr/bin/env python
"""Turn latency of loopback phone calls, alone and N at once on one box.

Every call is a real one: a simulated callee speaks the Twilio protocol over a local
WebSocket (8 kHz mu-law, paced in real time), the bot runs Silero VAD, Whisper, the
dialogue and the offline voice. Latency is measured on the callee's side of the line:
from the end of its speech to the first byte of bot audio that reaches it. For each
concurrency level N, ``--rounds`` batches of N simultaneous calls are placed (personas
taken in turn), and p50/p95 turn latency, Whisper decode time, CPU use and outcome
accuracy are reported, all in one run so the levels are comparable.

The benchmark reports its own noise: p50/p95 per round and their range across rounds
(``spread``), with the box's load average before and after each level. One round is one
sample of a tail; a p95 that moves by seconds between rounds at the same level says the
figure is the box's (other processes, a cold first decode) rather than the bot's, so
compare levels only where the spreads do not overlap.

    python bench/voice_bench.py --levels 1,2,4 --rounds 2 --report reports/voice-bench.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bot.runtime import build_investigator
from bot.settings import REPO_ROOT, Settings
from bot.sim.personas import load_dir
from bot.voice.evaluation import percentiles
from bot.voice.logs import configure_pipecat_logging
from bot.voice.loopback import LoopbackLine
from bot.voice.runtime import build_voice_stack, close_stack, prerender_prompts
from bot.voice.server import VoiceServer

console = Console()


def spread(per_round: list[dict[str, float | None]]) -> dict[str, list[float]]:
    """[lowest, highest] of each percentile over the rounds (empty rounds left out)."""
    out: dict[str, list[float]] = {}
    for key in ("p50", "p95"):
        values = [v for r in per_round if (v := r.get(key)) is not None]
        if values:
            out[key] = [min(values), max(values)]
    return out


async def run_level(
    line: LoopbackLine, personas: list[Any], audio: Path, n: int, rounds: int, start: int
) -> dict[str, Any]:
    latencies: list[float] = []
    per_round: list[dict[str, float | None]] = []
    asr: list[float] = []
    reply: list[float] = []
    wrong: list[str] = []
    ok = total = 0
    load_before = os.getloadavg()
    cpu0, wall0 = os.times(), time.perf_counter()
    for r in range(rounds):
        round_latencies: list[float] = []
        batch = [personas[(start + r * n + i) % len(personas)] for i in range(n)]
        calls = await asyncio.gather(
            *(line.call_persona(p.account, p.answers, audio / p.id) for p in batch)
        )
        for p, c in zip(batch, calls, strict=True):
            total += 1
            got = c.voice.result.record.outcome
            if got is not None and got.value == p.expected.outcome.value:
                ok += 1
            else:
                wrong.append(f"{p.id}: {got} (want {p.expected.outcome.value})")
            round_latencies += c.callee.latencies_ms()
            asr += [s * 1000 for _, s in c.voice.transcripts]
            reply += [
                (t.first_audio - t.replied) * 1000
                for t in c.voice.timeline.turns
                if t.first_audio is not None and t.replied is not None
            ]
        latencies += round_latencies
        per_round.append(percentiles(round_latencies))
    cpu1, wall = os.times(), time.perf_counter() - wall0
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return {
        "concurrent_calls": n,
        "calls": total,
        "outcome_ok": ok,
        "turn_latency_ms": percentiles(latencies),
        "rounds": per_round,
        "spread": spread(per_round),
        "load_avg": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        "asr_ms": percentiles(asr),
        "reply_to_audio_ms": percentiles(reply),
        "wrong_outcomes": wrong,
        "cpu_cores_busy": round(cpu / wall, 2),
        "wall_s": round(wall, 1),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings()
    if args.asr_workers:
        settings.voice.asr_num_workers = args.asr_workers
        settings.voice.asr_cpu_threads = max(1, (os.cpu_count() or 2) // args.asr_workers)
    settings.voice.record = False
    investigator = build_investigator(settings)
    stack, cache = build_voice_stack(settings, investigator)
    if cache is not None:
        prerender_prompts(cache, investigator)
    personas, _errors = load_dir(args.personas)
    personas = [p for p in personas if (args.audio_dir / p.id).is_dir()]
    levels = []
    try:
        async with VoiceServer(stack) as server:
            line = LoopbackLine(server)
            for i, n in enumerate(args.levels):
                console.print(f"{n} concurrent call(s) x {args.rounds} round(s) ...")
                levels.append(await run_level(line, personas, args.audio_dir, n, args.rounds, i))
    finally:
        close_stack(cache)
    return {
        "machine": {"cpus": os.cpu_count()},
        "asr": {
            "num_workers": settings.voice.asr_num_workers,
            "cpu_threads": settings.voice.asr_cpu_threads,
        },
        "voice": settings.voice.model_dump(),
        "levels": levels,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    shared = REPO_ROOT.parent / "shared" / "personas"
    ap.add_argument("--personas", type=Path, default=shared)
    ap.add_argument("--audio-dir", type=Path, default=shared / "audio")
    ap.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--asr-workers", type=int, default=0, help="parallel Whisper decodes (0: settings)"
    )
    ap.add_argument("--report", type=Path, default=Path("reports/voice-bench.json"))
    args = ap.parse_args()
    configure_pipecat_logging()
    report = asyncio.run(main_async(args))
    table = Table(
        "calls at once",
        "calls",
        "outcome ok",
        "latency p50",
        "p95",
        "p95 over rounds",
        "whisper p50",
        "cores busy",
        "load",
    )
    for lv in report["levels"]:
        lat, asr = lv["turn_latency_ms"], lv["asr_ms"]
        table.add_row(
            str(lv["concurrent_calls"]),
            str(lv["calls"]),
            str(lv["outcome_ok"]),
            f"{lat['p50']} ms",
            f"{lat['p95']} ms",
            "–".join(f"{v:g}" for v in lv["spread"].get("p95", [])) or "-",
            f"{asr['p50']} ms",
            str(lv["cpu_cores_busy"]),
            f"{lv['load_avg']['before']}→{lv['load_avg']['after']}",
        )
    console.print(table)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2), encoding="utf-8")
    console.print(f"report: {args.report}")


if __name__ == "__main__":
    main()
