"""Persona files (the contract in ``../shared/personas/README.md``), validated.

A persona is one simulated account holder: what the bank knows (``account``), what the
person says under each topic key (``answers``) and the ground truth a correct
investigation reaches (``expected``). Files are written by hand, so a bad one is refused
with a message naming the file, the line and the field, e.g.::

    p03.yaml:12: expected.outcome: 'finished' is not one of completed, wrong_person, ...

and the other files of the directory still load. Synthetic personas (``bot.sim.synth``)
go through the same model with :meth:`Persona.from_dict`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.core.account import Account
from bot.core.vocab import EntityLabel, Outcome, Purpose, RiskBand, Topic
from bot.core.yamlsource import LineMap, SourceError, SourceFileError, load_yaml
from bot.evaluation import PersonaCase

#: Outcomes after which a risk band makes sense (the design: "only for completed and
#: hung_up with enough answers"). A completed persona must state one.
BANDED_OUTCOMES = frozenset({Outcome.COMPLETED, Outcome.HUNG_UP})
ACCOUNT_ID_DIGITS = (16, 19)
PERSONA_SUFFIXES = (".yaml", ".yml")

_AMOUNT = re.compile(r"^\d+(\.\d+)?$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _choices(enum: type[Any]) -> str:
    return ", ".join(m.value for m in enum)


class Expected(BaseModel):
    """Ground truth of one persona. :meth:`to_dict` gives the plain form that the
    ``bot eval`` report copies verbatim."""

    model_config = ConfigDict(extra="forbid")

    outcome: Outcome
    risk_band: RiskBand | None = None
    #: Entity label -> value (or values) a correct extraction must find in the answers.
    entities: dict[EntityLabel, str | list[str]] = Field(default_factory=dict)

    @field_validator("entities", mode="before")
    @classmethod
    def _numbers_as_text(cls, value: Any) -> Any:
        """``amount: 800`` written without quotes is read as an int; accept it as "800"."""
        if isinstance(value, Mapping):
            return {
                k: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
                for k, v in value.items()
            }
        return value

    @field_validator("entities")
    @classmethod
    def _entity_values(
        cls, value: dict[EntityLabel, str | list[str]]
    ) -> dict[EntityLabel, str | list[str]]:
        for label, raw in value.items():
            for item in raw if isinstance(raw, list) else [raw]:
                if not item.strip():
                    raise ValueError(f"{label.value}: empty value")
                if label is EntityLabel.PURPOSE and item not in Purpose._value2member_map_:
                    raise ValueError(f"purpose: '{item}' is not one of {_choices(Purpose)}")
                if label is EntityLabel.AMOUNT and not _AMOUNT.match(item):
                    raise ValueError(
                        f"amount: '{item}' must be written in Arabic digits (e.g. \"800\")"
                    )
        return value

    @model_validator(mode="after")
    def _band_matches_outcome(self) -> Expected:
        if self.risk_band is not None and self.outcome not in BANDED_OUTCOMES:
            raise ValueError(
                f"risk_band is only for outcome completed or hung_up, not {self.outcome.value}"
            )
        if self.outcome is Outcome.COMPLETED and self.risk_band is None:
            raise ValueError("a completed persona needs a risk_band (low, medium or high)")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (no ``None`` band, entity labels as strings)."""
        return self.model_dump(mode="json", exclude_none=True)


class Persona(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    language: str = Field("zh", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]+)*$")
    account: Account
    #: Topic key -> what the person says (None: stays silent; missing: silent too).
    answers: dict[Topic, str | None]
    expected: Expected
    #: The simulated caller's voice in a multi-voice fixture root (``bot.sim.voices``):
    #: ``<root>/<voice>/<id>/``; None = the root's default voice.
    voice: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

    @field_validator("id")
    @classmethod
    def _id_is_a_path_part(cls, value: str) -> str:
        # The audio fixtures live in <audio-dir>/<persona id>/, so an id must be a name.
        if not _ID.match(value):
            raise ValueError(f"'{value}' must be letters, digits, '_', '-' or '.' only")
        return value

    @field_validator("account")
    @classmethod
    def _account_contract(cls, value: Account) -> Account:
        low, high = ACCOUNT_ID_DIGITS
        if not low <= len(value.account_id) <= high:
            raise ValueError(
                f"account_id has {len(value.account_id)} digits; expected {low} to {high}"
            )
        if not value.phone.startswith("+"):
            raise ValueError(f"phone '{value.phone}' must be in international form (+86...)")
        return value

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<synthetic>") -> Persona:
        """Validate ``data`` (a generated persona, say); errors name ``source``."""
        return _validate(data, source, LineMap())

    def to_dict(self) -> dict[str, Any]:
        """The persona in file form (round-trips through :meth:`from_dict`)."""
        return self.model_dump(mode="json", exclude_none=False) | {
            "account": self.account.model_dump(mode="json", exclude_none=True),
            "expected": self.expected.to_dict(),
        }

    def to_case(self) -> PersonaCase:
        answers = {topic.value: text for topic, text in self.answers.items()}
        return PersonaCase(self.id, self.account, answers, self.expected.to_dict(), self.voice)


@dataclass(frozen=True)
class PersonaError:
    """Why one file of a directory was refused."""

    file: str
    errors: tuple[SourceError, ...]

    def __str__(self) -> str:
        return "; ".join(str(e) for e in self.errors)


def _message(err: Mapping[str, Any]) -> str:
    """Pydantic's message, rewritten where a person editing YAML needs the choices."""
    ctx = err.get("ctx") or {}
    if err["type"] == "enum" and "expected" in ctx:
        choices = ctx["expected"].replace("'", "").replace(" or ", ", ")
        return f"{err['input']!r} is not one of {choices}"
    if err["type"] == "extra_forbidden":
        return "unknown field (misspelt?)"
    if err["type"] == "value_error":
        return str(ctx.get("error", err["msg"]))
    return str(err["msg"])


def _errors(exc: ValidationError, source: str, lines: LineMap) -> list[SourceError]:
    out = []
    for err in exc.errors():
        # Dict-key errors end in '[key]' (answers.card_purpos.[key]): the key is the field.
        loc = tuple(p for p in err["loc"] if p != "[key]")
        dotted = ".".join(str(p) for p in loc)
        message = _message(err)
        if err["loc"][-1:] == ("[key]",) and loc[:1] == ("answers",):
            message = f"'{loc[-1]}' is not a topic key: one of {_choices(Topic)}"
        out.append(SourceError(source, lines.line(loc), dotted, message))
    return out


def _validate(data: Any, source: str, lines: LineMap) -> Persona:
    if not isinstance(data, Mapping):
        raise SourceFileError([SourceError(source, 1, "", "expected a mapping at the top level")])
    try:
        return Persona.model_validate(data)
    except ValidationError as exc:
        raise SourceFileError(_errors(exc, source, lines)) from exc


def load_persona(path: Path) -> Persona:
    """One persona file; :class:`SourceFileError` (file, line, field) when it is bad."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceFileError([SourceError(path.name, None, "", f"cannot read: {exc}")]) from exc
    data, lines = load_yaml(text, path.name)
    return _validate(data, path.name, lines)


def load_dir(path: Path) -> tuple[list[Persona], list[PersonaError]]:
    """Every ``*.yaml``/``*.yml`` persona of ``path`` (sorted by name), and one error per
    bad file. Duplicate ids are errors too (the second file is refused)."""
    personas: list[Persona] = []
    errors: list[PersonaError] = []
    seen: dict[str, str] = {}
    files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix in PERSONA_SUFFIXES)
    for file in files:
        try:
            persona = load_persona(file)
        except SourceFileError as exc:
            errors.append(PersonaError(file.name, tuple(exc.errors)))
            continue
        if persona.id in seen:
            dup = SourceError(
                file.name, None, "id", f"duplicate id '{persona.id}' (also in {seen[persona.id]})"
            )
            errors.append(PersonaError(file.name, (dup,)))
            continue
        seen[persona.id] = file.name
        personas.append(persona)
    return personas, errors
