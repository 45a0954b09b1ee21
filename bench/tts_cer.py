"""Is the offline voice intelligible? Speak every built-in prompt, transcribe it with
Whisper base, report the character error rate (CER) wideband and on the phone line.

For every distinct prompt of every script node (rendered for the sample account) the
prompt cache synthesises the audio; Whisper base (int8, zh, beam 1, temperature 0) then
transcribes (a) the wideband rendering (16 kHz) and (b) the phone rendering (8 kHz,
G.711 mu-law round trip, as on the line). CER is total edits / total reference
characters after folding both sides the same way (Traditional -> Simplified with OpenCC,
punctuation dropped, numbers spelt as the voice says them, 幺 read as 一). It also
reports synthesis real-time factor and cache hit rates: a cold cache, the same prompts
again, and the prompts of a different account (only its own values are new).

    python bench/tts_cer.py [--report reports/tts_cer.json] [--cache-dir DIR] [--limit N]

With ``--fixtures ROOT`` it measures the callers' voices instead: every clip of every
voice directory under ROOT (``audio_fixtures/voices``: ``<voice>/<persona>/<topic>.wav``
with a ``manifest.json`` naming each clip's text and line effects) is transcribed as the
bot's Whisper hears it (8 kHz, the gateway's mu-law leg, resampled to 16 kHz) and scored against the persona's
answer; CER per voice, and per line effect (codec, packet loss, clipped start) over all.

    python bench/tts_cer.py --fixtures audio_fixtures/voices [--voice NAME ...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bot.core.account import Account, Transaction, sample_account
from bot.core.scripts import load_library
from bot.settings import Settings
from bot.speech import cer
from bot.voice.audio import read_audio
from bot.voice.tts import audio
from bot.voice.tts.cache import PromptCache
from bot.voice.tts.config import TtsSettings, default_repo_root
from bot.voice.tts.engine import Synthesizer, ZhttsSynthesizer
from bot.voice.tts.prompts import library_prompts
from bot.voice.tts.text import speakable

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


class MemoSynth:
    """Shares one synthesis between the wideband and the 8 kHz cache of this bench."""

    def __init__(self, inner: Synthesizer) -> None:
        self.inner = inner
        self.voice = inner.voice
        self.sample_rate = inner.sample_rate
        self._memo: dict[str, bytes] = {}

    def synthesize(self, text: str) -> bytes:
        if text not in self._memo:
            self._memo[text] = self.inner.synthesize(text)
        return self._memo[text]


def fold(text: str) -> str:
    """Both sides of the comparison: numbers as the voice says them, 幺 as 一."""
    return speakable(text).replace("幺", "一").replace("两", "二")


def edits(reference: str, hypothesis: str) -> tuple[int, int]:
    """(character edits, reference length) under the contract's CER rules."""
    from bot.speech import comparable

    ref = comparable(fold(reference))
    return round(cer(fold(reference), fold(hypothesis)) * len(ref)), len(ref)


def phone_line(pcm8k: bytes) -> bytes:
    """G.711 mu-law encode and decode (what the phone line does to 8 kHz PCM16)."""
    return audioop.ulaw2lin(audioop.lin2ulaw(pcm8k, 2), 2)


def to_whisper(pcm: bytes, rate: int) -> np.ndarray:
    return audio.resample(audio.to_float(pcm), rate, 16000)


def other_account() -> Account:
    """A second account: different name, card tail, amount, date and counterparty."""
    import datetime as dt

    return sample_account().model_copy(
        update={
            "name": "王芳",
            "card_last4": "8866",
            "txn": Transaction(amount=126000, date=dt.date(2026, 10, 3), counterparty="赵强"),
        }
    )


Transcriber = Callable[[np.ndarray], str]


def whisper_transcriber(settings: Settings) -> Transcriber:
    """Whisper base as this bench always runs it: int8, zh, beam 1, temperature 0."""
    from faster_whisper import WhisperModel

    model = WhisperModel(
        str(settings.whisper_path), device="cpu", compute_type="int8", cpu_threads=2
    )

    def transcribe(x: np.ndarray) -> str:
        segments, _ = model.transcribe(
            x,
            language="zh",
            beam_size=1,
            temperature=0.0,
            condition_on_previous_text=False,
        )
        return "".join(s.text for s in segments)

    return transcribe


def clip_groups(clip: dict[str, Any]) -> list[str]:
    """The line-effect groups a fixture clip (its manifest entry) counts in."""
    return [
        f"codec={clip['codec']}",
        "loss=yes" if clip["lost_frames"] else "loss=no",
        "clipped_start=yes" if clip["clip_start_ms"] else "clipped_start=no",
        "level_step=yes" if clip["level_step"] else "level_step=no",
    ]


def run_fixtures(
    root: Path, voices: list[str] | None, transcribe: Transcriber, verbose: bool = False
) -> dict[str, Any]:
    """CER per voice (and per line effect) of the fixture clips under ``root``."""
    from bot.sim.voices import voice_dirs

    per_voice: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[int]] = {}
    for name, directory in voice_dirs(root, voices).items():
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        total = [0, 0, 0]  # edits, reference characters, edits capped at the reference
        rows = []
        for key, clip in manifest["clips"].items():
            samples, rate = read_audio(directory / f"{key}.wav")
            # the loopback line's last leg: the gateway's mu-law (Twilio media streams)
            pcm8k = audio.to_pcm(audio.resample(samples, rate, 8000))
            hyp = transcribe(to_whisper(phone_line(pcm8k), 8000))
            e, n = edits(clip["text"], hyp)
            total[0] += e
            total[1] += n
            total[2] += min(e, n)
            for g in clip_groups(clip):
                groups.setdefault(g, [0, 0])
                groups[g][0] += e
                groups[g][1] += n
            rows.append(
                {"clip": key, "text": clip["text"], "hyp": hyp, "chars": n, "cer": round(e / n, 4)}
            )
            if verbose:
                print(f"{name} {e / n:.2f} {clip['text']} | {hyp}")
        per_voice[name] = {
            **manifest["voice"],
            "clips": len(rows),
            "reference_chars": total[1],
            "cer": round(total[0] / max(1, total[1]), 4),
            # one clip's repetition loop ("去我,去我,..." x60) can double a voice's CER:
            # the same with each clip's edits capped at its length
            "cer_capped": round(total[2] / max(1, total[1]), 4),
            "rows": rows,
        }
    return {
        "fixtures": str(root),
        "voices": per_voice,
        "by_effect": {g: round(e / max(1, n), 4) for g, (e, n) in sorted(groups.items())},
    }


def show_fixtures(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"caller voices on the line ({report['fixtures']}, Whisper base)")
    for col in ("voice", "engine", "speaker", "sex", "register", "clips", "CER", "CER capped"):
        table.add_column(col)
    for name, v in report["voices"].items():
        table.add_row(
            name, v["engine"], v["speaker"], v["sex"], v["register"], str(v["clips"]),
            f"{v['cer']:.1%}", f"{v['cer_capped']:.1%}",
        )  # fmt: skip
    console = Console()
    console.print(table)
    console.print(
        "by line effect: " + ", ".join(f"{g} {c:.1%}" for g, c in report["by_effect"].items()),
        highlight=False,
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings()
    tts = TtsSettings(speed=args.speed)
    lib = load_library(settings.templates_dir)
    prompts = library_prompts(lib, sample_account(), settings.bank_name)[: args.limit or None]
    cache_root = Path(args.cache_dir or tempfile.mkdtemp(prefix="tts-cer-"))

    engine = ZhttsSynthesizer(
        tts.python_path(default_repo_root()), voice=tts.voice, speed=tts.speed
    )
    t0 = time.perf_counter()
    engine.start()
    load_s = time.perf_counter() - t0
    engine.synthesize("预热")  # first inference allocates tensors
    synth = MemoSynth(engine)
    phone = PromptCache(
        synth,
        cache_root,
        out_rate=8000,
        peak_dbfs=args.peak_dbfs,
        telephone_filter=not args.no_filter,
        min_clause_chars=args.min_clause_chars,
    )
    wide = PromptCache(
        synth,
        cache_root / "wide",
        out_rate=16000,
        peak_dbfs=args.peak_dbfs,
        telephone_filter=False,
        min_clause_chars=args.min_clause_chars,
    )
    transcribe = whisper_transcriber(settings)

    rows: list[dict[str, Any]] = []
    totals = {"wide": [0, 0], "phone": [0, 0]}
    first_clause_ms: list[float] = []
    for p in prompts:
        t = time.perf_counter()
        it = phone.iter_audio(p.text)
        first = next(it, b"")
        first_clause_ms.append((time.perf_counter() - t) * 1000)
        pcm8 = first + b"".join(it)
        pcm16 = wide.audio(p.text)
        row: dict[str, Any] = {"where": p.where, "text": p.text, "spoken": speakable(p.text)}
        for name, x in (
            ("wide", to_whisper(pcm16, 16000)),
            ("phone", to_whisper(phone_line(pcm8), 8000)),
        ):
            hyp = transcribe(x)
            e, n = edits(p.text, hyp)
            totals[name][0] += e
            totals[name][1] += n
            row[f"{name}_hyp"] = hyp
            row[f"{name}_cer"] = round(e / n, 4) if n else 0.0
        row["seconds"] = round(len(pcm8) / 2 / 8000, 2)
        rows.append(row)
        if args.verbose:
            print(f"{row['phone_cer']:.2f} {row['wide_cer']:.2f} {p.text} | {row['phone_hyp']}")

    cold = {"hits": phone.hits, "misses": phone.misses, "hit_rate": round(phone.hit_rate, 3)}
    phone.hits = phone.misses = 0
    phone.prerender(p.text for p in prompts)
    for p in prompts:
        phone.audio(p.text)
    again = {"hits": phone.hits, "misses": phone.misses, "hit_rate": round(phone.hit_rate, 3)}
    phone.hits = phone.misses = 0
    for p in library_prompts(lib, other_account(), settings.bank_name)[: args.limit or None]:
        phone.audio(p.text)
    other = {"hits": phone.hits, "misses": phone.misses, "hit_rate": round(phone.hit_rate, 3)}
    engine.close()

    n_clauses = len({c.key for p in prompts for c in phone.clauses(p.text)})
    return {
        "voice": tts.voice,
        "options": {
            "speed": args.speed,
            "peak_dbfs": args.peak_dbfs,
            "telephone_filter": not args.no_filter,
            "min_clause_chars": args.min_clause_chars,
        },
        "n_prompts": len(prompts),
        "n_clauses": n_clauses,
        "reference_chars": totals["phone"][1],
        "cer_wideband": round(totals["wide"][0] / max(1, totals["wide"][1]), 4),
        "cer_8k_mulaw": round(totals["phone"][0] / max(1, totals["phone"][1]), 4),
        "synthesis": {
            "load_s": round(load_s, 2),
            "rtf": round(engine.busy_s / max(1e-9, phone.synth_audio_s), 3),
            "seconds": round(engine.busy_s, 2),
            "audio_seconds": round(phone.synth_audio_s, 2),
            "first_clause_ms_cold_p50": round(float(np.median(first_clause_ms)), 1),
        },
        "cache": {"cold": cold, "same_prompts_again": again, "other_account": other},
        "prompts": rows,
    }


def show(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"TTS intelligibility ({report['voice']}, Whisper base)")
    for col in ("prompt", "CER wide", "CER 8k", "8k transcript"):
        table.add_column(col, overflow="fold")
    for row in sorted(report["prompts"], key=lambda r: -r["phone_cer"]):
        table.add_row(
            row["text"], f"{row['wide_cer']:.0%}", f"{row['phone_cer']:.0%}", row["phone_hyp"]
        )
    console = Console()
    console.print(table)
    s = report["synthesis"]
    console.print(
        f"overall CER: wideband {report['cer_wideband']:.1%}, 8 kHz mu-law "
        f"{report['cer_8k_mulaw']:.1%} over {report['reference_chars']} characters, "
        f"{report['n_prompts']} prompts, {report['n_clauses']} clauses\n"
        f"synthesis RTF {s['rtf']} (load {s['load_s']} s); cache hit rate: cold "
        f"{report['cache']['cold']['hit_rate']:.0%}, same prompts again "
        f"{report['cache']['same_prompts_again']['hit_rate']:.0%}, another account "
        f"{report['cache']['other_account']['hit_rate']:.0%}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--report", type=Path, help="write the JSON report here")
    ap.add_argument("--cache-dir", type=Path, help="cache directory (default: a fresh temp dir)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N prompts")
    ap.add_argument("--speed", type=float, default=1.0, help="duration ratio (1.1 = slower)")
    ap.add_argument("--peak-dbfs", type=float, default=-3.0)
    ap.add_argument("--no-filter", action="store_true", help="no low-cut before 8 kHz")
    ap.add_argument("--min-clause-chars", type=int, default=4)
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--fixtures", type=Path, help="score the caller voices under this root")
    ap.add_argument("--voice", action="append", help="with --fixtures: only this voice")
    args = ap.parse_args()
    if args.fixtures:
        report = run_fixtures(
            args.fixtures, args.voice, whisper_transcriber(Settings()), args.verbose
        )
        show_fixtures(report)
    else:
        report = run(args)
        show(report)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
