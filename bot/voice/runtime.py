"""Builds the voice path from settings: what every call shares, loaded once."""

from __future__ import annotations

from pipecat.processors.frame_processor import FrameProcessor

from bot.core.account import Account
from bot.core.investigation import Investigator
from bot.settings import REPO_ROOT, Settings
from bot.voice.asr import AsrOptions, Transcriber, shared_transcriber
from bot.voice.asr_service import BatchOptions, start_service
from bot.voice.session import VoiceStack
from bot.voice.tts.cache import PromptCache
from bot.voice.tts.factory import build_prompt_cache
from bot.voice.tts.service import load_tts_service


def build_transcriber(settings: Settings) -> Transcriber:
    v = settings.voice
    return shared_transcriber(
        settings.whisper_path,
        AsrOptions(
            cpu_threads=v.asr_cpu_threads,
            num_workers=v.asr_num_workers,
            beam_size=v.asr_beam_size,
            device=v.asr_device,
            compute_type=v.asr_compute_type,
        ),
    )


def start_asr_service(settings: Settings, transcriber: Transcriber) -> None:
    """The process's ASR service in front of the shared transcriber: every call's STT
    sends its segments there (``bot.voice.asr_service``)."""
    v = settings.voice
    start_service(
        transcriber,
        BatchOptions(
            batch_size=v.asr_batch_size,
            wait_s=v.asr_batch_wait_ms / 1000,
            max_queue_delay_s=v.asr_max_queue_delay_ms / 1000,
        ),
    )


def build_voice_stack(
    settings: Settings, investigator: Investigator, *, warm_up: bool = True
) -> tuple[VoiceStack, PromptCache | None]:
    """The shared parts of every call: Whisper, the TTS (with its prompt cache when the
    built-in voice is used), the gateway protocol and the recordings directory."""
    transcriber = build_transcriber(settings)
    spec = settings.tts.service
    cache = (
        build_prompt_cache(settings.tts, settings.data_dir, REPO_ROOT)
        if spec.strip() in ("", "cached")
        else None
    )

    def tts() -> FrameProcessor:
        return load_tts_service(spec, cache)

    if warm_up:
        transcriber.warm_up()
    start_asr_service(settings, transcriber)
    provider = settings.telephony.provider
    stack = VoiceStack(
        investigator,
        transcriber,
        tts,
        settings=settings.voice,
        provider=provider,
        recordings_dir=settings.recordings_path if settings.voice.record else None,
        prepare=(lambda account: prerender_account(cache, investigator, account))
        if cache is not None
        else None,
    )
    return stack, cache


def prerender_prompts(cache: PromptCache, investigator: Investigator) -> tuple[int, int]:
    """Render every fixed clause of every built-in prompt into the cache (for a sample
    account: clauses that carry account data are synthesised per call)."""
    from bot.core.vocab import Scenario
    from bot.voice.tts.prompts import library_prompts

    sample = Account(
        account_id="0" * 16,
        name="张伟",
        phone="+8613800000000",
        card_last4="0000",
        scenario=Scenario.SUSPICIOUS_TXN,
        model_score=0.5,
    )
    prompts = library_prompts(investigator.library, sample, investigator.bank_name)
    return cache.prerender(p.text for p in prompts)


def prerender_account(cache: PromptCache, investigator: Investigator, account: Account) -> int:
    """Synthesise the clauses of this account's script that carry its own data (card
    digits, amounts, names) while the greeting plays, so that no prompt of the call waits
    for the voice. Returns the number of clauses synthesised."""
    from bot.voice.tts.prompts import library_prompts

    script_id = investigator.router.script_id(account)
    prompts = library_prompts(investigator.library, account, investigator.bank_name)
    new, _cached = cache.prerender(p.text for p in prompts if p.where.startswith(f"{script_id}/"))
    return new


def close_stack(cache: PromptCache | None) -> None:
    """Stop the TTS worker process, if one was started."""
    close = getattr(cache.synth, "close", None) if cache is not None else None
    if callable(close):
        close()
