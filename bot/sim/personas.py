"""Persona files (the contract in ``../shared/personas/README.md``), validated.

A bad file is refused with a message naming the file and the field; the other files of
the directory still load.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.core.account import Account
from bot.core.vocab import EntityLabel, Outcome, RiskBand, Topic
from bot.core.yamlsource import SourceError, SourceFileError, load_yaml_file, pydantic_errors
from bot.evaluation import PersonaCase


class Expected(BaseModel):
    model_config = ConfigDict(extra="allow")

    outcome: Outcome
    risk_band: RiskBand | None = None
    entities: dict[EntityLabel, str | list[str]] = Field(default_factory=dict)


class Persona(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    language: str = "zh"
    account: Account
    #: Topic key -> what the person says (None: stays silent).
    answers: dict[Topic, str | None]
    expected: Expected

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<synthetic>") -> Persona:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SourceFileError(pydantic_errors(exc, source, _no_lines())) from exc

    def to_case(self) -> PersonaCase:
        expected = self.expected.model_dump(mode="json", exclude_none=True)
        answers = {topic.value: text for topic, text in self.answers.items()}
        return PersonaCase(self.id, self.account, answers, expected)


def _no_lines() -> Any:
    from bot.core.yamlsource import LineMap

    return LineMap()


@dataclass(frozen=True)
class PersonaError:
    file: str
    errors: tuple[SourceError, ...]

    def __str__(self) -> str:
        return "; ".join(str(e) for e in self.errors)


def load_persona(path: Path) -> Persona:
    data, lines = load_yaml_file(path)
    if not isinstance(data, dict):
        raise SourceFileError(
            [SourceError(str(path), 1, "", "expected a mapping at the top level")]
        )
    try:
        return Persona.model_validate(data)
    except ValidationError as exc:
        raise SourceFileError(pydantic_errors(exc, path.name, lines)) from exc


def load_dir(path: Path) -> tuple[list[Persona], list[PersonaError]]:
    """Every ``*.yaml`` persona of ``path`` (sorted by name), and one error per bad file.
    Duplicate ids are errors too (the second file is refused)."""
    personas: list[Persona] = []
    errors: list[PersonaError] = []
    seen: dict[str, str] = {}
    for file in sorted(path.glob("*.yaml")):
        try:
            persona = load_persona(file)
        except SourceFileError as exc:
            errors.append(PersonaError(file.name, tuple(exc.errors)))
            continue
        if persona.id in seen:
            errors.append(
                PersonaError(
                    file.name,
                    (
                        SourceError(
                            file.name,
                            None,
                            "id",
                            f"duplicate id '{persona.id}' (also in {seen[persona.id]})",
                        ),
                    ),
                )
            )
            continue
        seen[persona.id] = file.name
        personas.append(persona)
    return personas, errors
