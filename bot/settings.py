"""The single settings object.

Values come, highest priority first, from: keyword arguments, ``BOT_*`` environment
variables (nested fields with ``__``, e.g. ``BOT_TIERS__HIGH=0.8``), a TOML or YAML file
named by ``BOT_CONFIG_FILE`` (or passed to :func:`load_settings`), and the defaults below.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from bot.delivery.config import DeliverySettings
from bot.store.pii_crypto import PiiSettings
from bot.telephony.config import TelephonySettings
from bot.voice.config import VoiceSettings
from bot.voice.tts.config import TtsSettings
from bot.web.config import WebSettings

PACKAGE_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_ROOT.parent


def _default_templates_dir() -> Path:
    import scripts_templates

    return Path(scripts_templates.__file__).resolve().parent


def _default_intent_model_dir() -> Path:
    import nlu

    return Path(nlu.__file__).resolve().parent / "intent" / "model"


def _default_reading_model_dir() -> Path:
    import nlu

    return Path(nlu.__file__).resolve().parent / "reading" / "model"


class TierThresholds(BaseModel):
    """Prior risk tiers from the bank's model score: ``score >= high`` is tier high,
    ``score >= medium`` tier medium, else low."""

    medium: float = Field(0.5, ge=0, le=1)
    high: float = Field(0.8, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> TierThresholds:
        if self.medium > self.high:
            raise ValueError("tiers: medium threshold must not exceed high")
        return self


class DialogueBudget(BaseModel):
    """Hard limits on one call, whatever the script says."""

    max_turns: int = Field(30, ge=1)
    max_seconds: float = Field(420.0, gt=0)
    #: Consecutive refusals that end the call as ``refused`` (three: a holder who will
    #: not discuss the money may still answer who keeps the card).
    refusals_to_end: int = Field(3, ge=1)


class TracingSettings(BaseModel):
    """Off by default; needs the ``tracing`` extra (``pip install '.[tracing]'``);
    docs/operations.md, Traces."""

    #: Record a span per call and per dialogue turn and export them over OTLP/HTTP.
    enabled: bool = False
    #: The collector's OTLP/HTTP traces URL (``http://collector:4318/v1/traces``);
    #: empty = the exporter's default (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or
    #: ``http://localhost:4318/v1/traces``).
    otlp_endpoint: str = ""
    #: ``service.name`` of the spans' resource.
    service_name: str = "callbot"
    #: Headers sent with each export, ``key=value`` pairs separated by commas (e.g. a
    #: collector's ``authorization=Bearer ...``).
    headers: SecretStr = SecretStr("")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BOT_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    #: Where the embedded defaults keep their files (SQLite database, recordings...).
    data_dir: Path = Path("var")
    #: SQLAlchemy URL; empty = SQLite in ``data_dir``. PostgreSQL:
    #: ``postgresql+psycopg://user@host:5432/db``.
    database_url: str = ""
    #: Workers ride out database outages: first retry after this long, doubling per
    #: failed try up to the cap (``docs/security.md``, database outages).
    db_retry_base_s: float = Field(0.5, gt=0)
    db_retry_cap_s: float = Field(15.0, gt=0)
    #: Call recordings (WAV) live under this directory; empty = ``data_dir/recordings``.
    recordings_dir: Path | None = None
    #: A CTranslate2 Whisper model directory (``bot models install`` provisions base).
    whisper_model_dir: Path | None = None
    #: Directory with ``scripts/``, ``blocks/``, ``routing.yaml`` (compliance-owned).
    templates_dir: Path = Field(default_factory=_default_templates_dir)
    #: Versioned risk rule set (weights, thresholds, keyword lists).
    ruleset_file: Path | None = None
    #: Where the bot's scripts and rule set come from: "files" (templates_dir and
    #: ruleset_file as they are) or "database" (the versions published in the compliance
    #: workspace, materialised over them under data_dir/templates).
    templates_source: Literal["files", "database"] = "files"
    #: With templates_source = "database": how often (seconds, at most) a worker, ``bot
    #: call`` or ``bot eval`` checks for a newly published set before a call; a new set
    #: is used from the next call on, calls in progress keep theirs. 0 = read at start only.
    templates_reload_s: float = Field(10.0, ge=0)
    #: Disposition policy overrides (per branch); None = the built-in default table.
    policy_file: Path | None = None
    #: A ``save_pretrained`` directory of the intent classifier (swap in a bank's own).
    intent_model_dir: Path = Field(default_factory=_default_intent_model_dir)
    #: Use the transformers intent model; False = rules only (fast tests, tiny boxes).
    intent_model_enabled: bool = True
    #: The answer-reading model (``bot nlu train`` writes it; a reviewed, published
    #: version can live anywhere): what each answer means under the schema.
    reading_model_dir: Path = Field(default_factory=_default_reading_model_dir)
    #: Where the reading model comes from: "files" (``reading_model_dir`` as it is) or
    #: "database" (the version published with ``bot nlu models approve``; the packaged
    #: model while none is).
    reading_model_source: Literal["files", "database"] = "files"
    #: The bank's official service number, told to a callee who doubts the call
    #: (empty: "the number on the back of your card").
    bank_hotline: str = ""
    #: Bank name spoken in the opening.
    bank_name: str = "示例银行"
    tiers: TierThresholds = Field(default_factory=TierThresholds)
    budget: DialogueBudget = Field(default_factory=DialogueBudget)
    #: Share of low-risk cleared calls sent to human review.
    review_sample_rate: float = Field(0.05, ge=0, le=1)
    #: Seed for the review sampler, so that sampling is reproducible per account.
    review_sample_seed: str = "review-v1"
    #: Memoised NLU results per process (the same short answers recur across calls).
    nlu_cache_size: int = Field(4096, ge=0)
    #: How dispositions reach the bank (webhook with HMAC signature, or a JSONL file).
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    #: Torch threads for the intent model in one worker process.
    torch_threads: int = Field(1, ge=1)
    #: The phone line: VAD, turn-taking, timeouts, recording (``BOT_VOICE__*``).
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
    #: Text-to-speech: the offline voice, its prompt cache, or another pipecat service.
    tts: TtsSettings = Field(default_factory=TtsSettings)
    #: Telephony gateway: ``loopback`` (simulated callees), ``twilio``, ``telnyx``, ``plivo``.
    telephony: TelephonySettings = Field(default_factory=TelephonySettings)
    #: The review dashboard: listen address, sessions, lock-out (``BOT_WEB__*``).
    web: WebSettings = Field(default_factory=WebSettings)
    #: The key that keeps callees' full numbers sealed (``BOT_PII__KEY``; docs/pii-storage.md).
    pii: PiiSettings = Field(default_factory=PiiSettings)
    #: OpenTelemetry traces of calls and turns over OTLP/HTTP (``BOT_TRACING__*``).
    tracing: TracingSettings = Field(default_factory=TracingSettings)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'bot.db'}"

    @property
    def whisper_path(self) -> Path:
        return self.whisper_model_dir or self.data_dir / "models" / "whisper-base"

    @property
    def recordings_path(self) -> Path:
        return self.recordings_dir or self.data_dir / "recordings"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("BOT_CONFIG_FILE")
        if config_file:
            path = Path(config_file)
            if not path.is_file():
                raise FileNotFoundError(f"BOT_CONFIG_FILE={config_file}: no such file")
            if path.suffix == ".toml":
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
            elif path.suffix in (".yaml", ".yml"):
                sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
            else:
                raise ValueError(f"BOT_CONFIG_FILE={config_file}: use a .toml or .yaml file")
        return tuple(sources)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings, optionally from an explicit config file (same as BOT_CONFIG_FILE)."""
    if config_file is None:
        return Settings(**overrides)
    previous = os.environ.get("BOT_CONFIG_FILE")
    os.environ["BOT_CONFIG_FILE"] = str(config_file)
    try:
        return Settings(**overrides)
    finally:
        if previous is None:
            del os.environ["BOT_CONFIG_FILE"]
        else:
            os.environ["BOT_CONFIG_FILE"] = previous


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, built once."""
    return Settings()
