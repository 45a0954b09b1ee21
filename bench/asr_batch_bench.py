#!/usr/bin/env python
"""Whisper decode of N simultaneous segments: one at a time against batched, same run.

The ASR service (``bot.voice.asr_service``) is what every call's STT decodes through.
Here N threads (N calls whose callee stopped talking at the same moment) each submit one
persona answer, as the bot hears it over the phone line, to a service decoding one at a
time (``batch_size=1``) or in batches (``batch_size=N``, capped by ``--max-batch``); the
two modes alternate round by round, so they share the box's noise. Reported per N and
mode: decode throughput (seconds of audio per wall second), per-segment latency (submit
to transcript) p50/p95, the batches actually formed, whether the texts agree, and the
load average around the run (the reference box has 2 CPUs shared with other work).

    python bench/asr_batch_bench.py --levels 1,4,8,16 --rounds 3
    python bench/asr_batch_bench.py --device cuda --compute-type float16 --levels 1,8,32
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from bot.settings import REPO_ROOT, Settings
from bot.voice.asr import AsrOptions, Transcriber, Transcript
from bot.voice.asr_service import AsrService, BatchOptions
from bot.voice.audio import degrade_for_phone, read_audio, resample
from bot.voice.evaluation import percentiles

console = Console(width=150)


class CountingTranscriber(Transcriber):
    """Records the size of every batch decode."""

    batches: list[int]

    def decode_batch(self, pieces: Sequence[np.ndarray]) -> list[Transcript]:
        self.batches.append(len(pieces))
        return super().decode_batch(pieces)


def load_clips(audio_dir: Path) -> list[np.ndarray]:
    """Every persona answer as the bot hears it: 8 kHz mu-law line, back at 16 kHz."""
    clips = []
    for path in sorted(audio_dir.glob("*/*.wav")):
        samples, rate = read_audio(path)
        clips.append(resample(degrade_for_phone(samples, rate), 8000, 16000))
    return clips


def one_round(service: AsrService, clips: list[np.ndarray]) -> tuple[float, list[float], list[str]]:
    """Submit every clip at once from its own thread; wall time, latencies, texts."""
    barrier = threading.Barrier(len(clips) + 1)
    latencies = [0.0] * len(clips)
    texts = [""] * len(clips)

    def call(i: int) -> None:
        barrier.wait()
        t0 = time.perf_counter()
        texts[i] = service.transcribe(clips[i]).text
        latencies[i] = time.perf_counter() - t0

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(clips))]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, latencies, texts


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings()
    v = settings.voice
    options = AsrOptions(
        cpu_threads=v.asr_cpu_threads,
        num_workers=v.asr_num_workers,
        beam_size=v.asr_beam_size,
        device=args.device or v.asr_device,
        compute_type=args.compute_type or v.asr_compute_type,
    )
    transcriber = CountingTranscriber(settings.whisper_path, options)
    transcriber.batches = []
    clips = load_clips(args.audio_dir)
    transcriber.transcribe(clips[0])  # warm up both paths (warm_up's silence is gated)
    transcriber.decode_batch(clips[:1] * 2)
    load_before = os.getloadavg()
    levels = []
    offset = 0
    for n in args.levels:
        modes: dict[str, dict[str, Any]] = {
            m: {"wall": 0.0, "audio": 0.0, "lat": [], "batches": []} for m in ("one", "batched")
        }
        agree = total = 0
        for r in range(args.rounds):
            batch = [clips[(offset + i) % len(clips)] for i in range(n)]
            offset += n
            texts: dict[str, list[str]] = {}
            order = [("one", 1), ("batched", min(n, args.max_batch))]
            for mode, size in order if r % 2 == 0 else order[::-1]:
                service = AsrService(
                    transcriber,
                    BatchOptions(
                        batch_size=size, wait_s=v.asr_batch_wait_ms / 1000, max_queue_delay_s=0
                    ),
                )
                transcriber.batches = []
                try:
                    wall, lat, texts[mode] = one_round(service, batch)
                finally:
                    service.close()
                m = modes[mode]
                m["wall"] += wall
                m["audio"] += sum(c.size for c in batch) / 16000
                m["lat"] += [x * 1000 for x in lat]
                m["batches"] += transcriber.batches
            agree += sum(a == b for a, b in zip(texts["one"], texts["batched"], strict=True))
            total += n
        row: dict[str, Any] = {"segments_at_once": n, "rounds": args.rounds}
        for mode, m in modes.items():
            row[mode] = {
                "throughput_audio_s_per_s": round(m["audio"] / m["wall"], 2),
                "latency_ms": percentiles(m["lat"]),
                "mean_batch": round(statistics.fmean(m["batches"]), 1) if m["batches"] else 0,
            }
        row["speedup"] = round(
            row["batched"]["throughput_audio_s_per_s"] / row["one"]["throughput_audio_s_per_s"], 2
        )
        row["texts_agree"] = f"{agree}/{total}"
        levels.append(row)
        console.print(f"N={n}: speed-up {row['speedup']}x, texts agree {agree}/{total}")
    return {
        "machine": {"cpus": os.cpu_count(), "device": options.device},
        "asr": {"compute_type": options.compute_type, "beam_size": options.beam_size},
        "batch_wait_ms": v.asr_batch_wait_ms,
        "max_batch": args.max_batch,
        "clips": len(clips),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "levels": levels,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    shared = REPO_ROOT.parent / "shared" / "personas" / "audio"
    ap.add_argument("--audio-dir", type=Path, default=shared)
    ap.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 8])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-batch", type=int, default=32, help="largest batch (asr_batch_size)")
    ap.add_argument("--device", default="", help="cpu, cuda, auto (default: settings)")
    ap.add_argument("--compute-type", default="", help="e.g. int8, float16 (default: settings)")
    ap.add_argument("--report", type=Path, default=Path("reports/asr-batch-bench.json"))
    args = ap.parse_args()
    report = run(args)
    table = Table(
        "at once", "one: audio s/s", "p50", "p95", "batched: audio s/s", "p50", "p95",
        "mean batch", "speed-up", "texts agree",
    )  # fmt: skip
    for lv in report["levels"]:
        one, bat = lv["one"], lv["batched"]
        table.add_row(
            str(lv["segments_at_once"]),
            str(one["throughput_audio_s_per_s"]),
            f"{one['latency_ms']['p50']} ms",
            f"{one['latency_ms']['p95']} ms",
            str(bat["throughput_audio_s_per_s"]),
            f"{bat['latency_ms']['p50']} ms",
            f"{bat['latency_ms']['p95']} ms",
            str(bat["mean_batch"]),
            f"{lv['speedup']}x",
            lv["texts_agree"],
        )
    console.print(table)
    console.print(
        f"load average before {report['load_average_before']}, after {report['load_average_after']}"
    )
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2), encoding="utf-8")
    console.print(f"report: {args.report}")


if __name__ == "__main__":
    main()
