"""Builds the investigation core from settings (the only place that reads its files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from bot.core.investigation import DialogueLimits, Investigator
from bot.core.lint import lint_library
from bot.core.policy import Policy
from bot.core.routing import load_router
from bot.core.scoring import RiskScorer, load_ruleset
from bot.core.scripts import load_library
from bot.core.yamlsource import SourceFileError
from bot.settings import Settings
from bot.tracing import instrument


def ruleset_path(settings: Settings) -> Path:
    return settings.ruleset_file or settings.templates_dir / "rulesets" / "default.yaml"


def template_paths(settings: Settings, engine: Engine | None = None) -> tuple[Path, Path]:
    """The templates directory and rule set the bot runs. ``templates_source``:
    ``files`` (default) runs ``templates_dir`` / ``ruleset_file`` as they are; ``database``
    runs the versions published in the compliance workspace, materialised over them
    (see :mod:`bot.templates_store`; :func:`build_investigator` follows later
    publications, :mod:`bot.templates_live`)."""
    source = settings.templates_source
    if source == "files":
        return settings.templates_dir, ruleset_path(settings)
    if source != "database":
        raise ValueError(f"templates_source must be 'files' or 'database', not {source!r}")
    from bot.templates_store import materialise_published

    found = materialise_published(settings, engine)
    return found.root, found.ruleset


def reading_model_path(settings: Settings, engine: Engine | None = None) -> Path:
    """The reading model the bot runs: ``reading_model_dir``, or with
    ``reading_model_source = "database"`` the published version (see
    :mod:`bot.nlu_registry`), falling back to ``reading_model_dir`` while none is."""
    if settings.reading_model_source == "files":
        return settings.reading_model_dir
    from bot.nlu_registry import published_model_dir
    from bot.store.db import engine_for

    with engine_for(settings.db_url, engine) as eng:
        found = published_model_dir(eng, settings.data_dir / "models" / "reading")
    return found or settings.reading_model_dir


def build_investigator(settings: Settings, engine: Engine | None = None) -> Investigator:
    """Load scripts, routing, rule set, policy and NLU. Refuses broken templates: a
    script that fails lint never reaches a caller. ``engine`` (optional) is the database
    to read published versions from with ``templates_source = "database"``; then, with
    ``templates_reload_s`` above 0, the investigator follows the published set: a set
    published later is used from the next call on (:mod:`bot.templates_live`). With
    ``tracing.enabled`` its calls and turns are traced (:mod:`bot.tracing`)."""
    shared = _Shared(settings, engine)
    if settings.templates_source == "database" and settings.templates_reload_s > 0:
        from bot.store.db import make_engine
        from bot.templates_live import LiveInvestigator

        return LiveInvestigator(settings, engine or make_engine(settings.db_url), shared.core)
    templates_dir, ruleset_file = template_paths(settings, engine)
    return shared.core(templates_dir, ruleset_file)


class _Shared:
    """What every template set of a process shares: the NLU (loaded once, after the
    first set passed its checks) and the policy."""

    def __init__(self, settings: Settings, engine: Engine | None) -> None:
        self.settings = settings
        self.engine = engine
        self._analyzer: Any = None
        self._policy: Policy | None = None

    def analyzer(self) -> Any:
        if self._analyzer is None:
            from nlu.analyzer import Analyzer

            s = self.settings
            if s.intent_model_enabled:
                import torch

                torch.set_num_threads(s.torch_threads)
            self._analyzer = Analyzer(
                s.intent_model_dir if s.intent_model_enabled else None,
                cache_size=s.nlu_cache_size,
                reading_model_dir=reading_model_path(s, self.engine),
            )
        return self._analyzer

    def policy(self) -> Policy:
        if self._policy is None:
            s = self.settings
            self._policy = Policy.from_file(
                s.policy_file, sample_rate=s.review_sample_rate, sample_seed=s.review_sample_seed
            )
        return self._policy

    def core(self, templates_dir: Path, ruleset_file: Path) -> Investigator:
        """The investigator of one templates tree and rule set (raises
        :class:`SourceFileError` when they fail the start-up checks)."""
        settings = self.settings
        library = load_library(templates_dir)
        errors = lint_library(library, settings.bank_name)
        router, lines = load_router(templates_dir, settings.tiers.medium, settings.tiers.high)
        errors += router.check(
            {s.id: (set(s.scenarios), set(s.tiers)) for s in library.scripts.values()}, lines
        )
        if errors:
            raise SourceFileError(errors)
        scorer = RiskScorer(load_ruleset(ruleset_file))
        investigator = Investigator(
            library,
            router,
            scorer,
            self.policy(),
            self.analyzer(),
            bank_name=settings.bank_name,
            bank_hotline=settings.bank_hotline,
            limits=DialogueLimits(
                max_turns=settings.budget.max_turns,
                max_seconds=settings.budget.max_seconds,
                refusals_to_end=settings.budget.refusals_to_end,
            ),
        )
        # Off by default: then the investigator as it is, and OpenTelemetry never imported.
        return instrument(investigator, settings.tracing)
