"""Schema of script templates, blocks and language packs (validated with pydantic).

A *script* is a graph of *nodes*. Each node says one Jinja2 prompt under a topic key and
then either goes straight on (``next``), waits for an answer and routes on its intent
(``on`` / ``default``), or ends the call (``end``). Reusable *blocks* (identity check,
custody questions, closings...) are separate files included by reference; their targets
may name parameters (``$on_success``) that each including script binds.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.core.messages import N_
from bot.core.vocab import Announcement, EntityLabel, Intent, Outcome, RiskBand, Scenario

#: Pseudo-intents a node may route on besides the :class:`Intent` values.
PSEUDO_INTENTS = frozenset({"no_input", "no_match"})
ROUTABLE_INTENTS = frozenset(i.value for i in Intent) | PSEUDO_INTENTS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Reprompts(_Strict):
    #: Said when the callee stays silent.
    no_input: str | None = None
    #: Said when the answer is unclear or does not fit the question.
    no_match: str | None = None


class Followup(_Strict):
    """Ask node ``ask`` before moving on, when the answer's intent is one of
    ``if_intent`` (any, if empty) and it lacks an entity of label ``if_missing``."""

    ask: str
    if_intent: list[Intent] = Field(default_factory=list)
    if_missing: EntityLabel | None = None


class Node(_Strict):
    topic: str = "default"
    say: str
    #: Routes by answer intent (or ``no_input`` / ``no_match``) to a node id.
    on: dict[str, str] = Field(default_factory=dict)
    #: Where any other answer goes.
    default: str | None = None
    #: Statement: say, then go straight on to this node (no answer awaited).
    next: str | None = None
    #: Terminal: say, then hang up with this outcome.
    end: Outcome | None = None
    #: The identity gate: its ``affirm`` route confirms the holder's identity.
    gate: Literal["identity"] | None = None
    reprompt: Reprompts = Field(default_factory=Reprompts)
    #: Re-prompts allowed on this node (silence or unclear) before moving on.
    retries: int = Field(1, ge=0, le=3)
    followups: list[Followup] = Field(default_factory=list)
    #: Keypad digits accepted as answers, mapped to intents.
    dtmf: dict[str, Intent] = Field(default_factory=dict)
    #: Skip this node (take ``default``) when any of these variables is empty.
    requires: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_kind(self) -> Node:
        kinds = [bool(self.on or self.default), self.next is not None, self.end is not None]
        if sum(kinds) != 1:
            raise ValueError(
                N_(
                    "a node needs exactly one of: 'on'/'default' (question), "
                    "'next' (statement) or 'end' (closing)"
                )
            )
        if self.requires and self.default is None:
            raise ValueError(N_("'requires' needs a 'default' to go to when it is skipped"))
        return self

    @property
    def is_question(self) -> bool:
        return self.next is None and self.end is None

    def targets(self) -> list[str]:
        out = list(self.on.values())
        out += [t for t in (self.default, self.next) if t is not None]
        out += [f.ask for f in self.followups]
        return out


class Include(_Strict):
    block: str
    with_: dict[str, str] = Field(default_factory=dict, alias="with")


class Handlers(_Strict):
    """Nodes the dialogue jumps to on events that can happen at any question."""

    callback: str = "close_callback"
    refused: str = "close_refused"
    voicemail: str = "close_voicemail"
    budget: str = "close_budget"
    #: A confirmed holder who insists on a person: a person calls back.
    handoff: str = "close_handoff"
    #: Repeat requests honoured per node before the answer counts as no-match.
    repeat_limit: int = Field(2, ge=0)


class ScriptFile(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    version: int = Field(ge=1)
    language: str = "zh"
    title: str = ""
    scenarios: list[Scenario] = Field(min_length=1)
    tiers: list[RiskBand] = Field(min_length=1)
    start: str
    include: list[Include] = Field(default_factory=list)
    handlers: Handlers = Field(default_factory=Handlers)
    nodes: dict[str, Node] = Field(default_factory=dict)


class BlockFile(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    description: str = ""
    params: list[str] = Field(default_factory=list)
    nodes: dict[str, Node] = Field(min_length=1)


class Replies(_Strict):
    """Answers to what a caller asks or says besides answering (see ``LanguagePack``)."""

    ask_who: str = ""
    doubt_caller: str = ""
    want_human: str = ""
    hard_of_hearing: str = ""


class LanguagePack(_Strict):
    """Fixed phrases and checks for one language; a new language is one more file."""

    language: str
    #: The opening must contain one phrase of every group (automated assistant, recording).
    disclosure: list[list[str]] = Field(min_length=1)
    #: Said before a prompt is repeated on request.
    repeat_prefix: str = ""
    #: Default keypad meanings.
    dtmf: dict[str, Intent] = Field(default_factory=dict)
    #: What the bot says back to a caller's side remark before going on (keys: the
    #: reading's acts ``ask_who``, ``doubt_caller``, ``want_human``, ``hard_of_hearing``).
    #: Plain text with ``{bank_name}`` and ``{hotline}``; said before the next prompt.
    replies: Replies = Field(default_factory=lambda: Replies())
    #: ``{hotline}`` when the bank's number is not configured.
    hotline_fallback: str = ""
    #: Regular expressions for an explicit "yes, it's me". When any are given, the
    #: identity gate confirms only an answer that matches one: a fragment of a line
    #: ("飞" for "谁？"), the holder's name said back, or a question back is asked again,
    #: however the models read it (``docs/nlu.md``, "The identity gate").
    identity_affirmations: list[str] = Field(default_factory=list)
    #: Carrier announcements by kind: an answer with one of a kind's phrases (and none of
    #: ``leave_message``) is that announcement; the call ends without a word said to it.
    announcements: dict[Announcement, list[str]] = Field(default_factory=dict)
    #: Phrases of a voicemail box's invitation (请在提示音后留言): a message is left there.
    leave_message: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _patterns_compile(self) -> LanguagePack:
        for i, pattern in enumerate(self.identity_affirmations):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"identity_affirmations[{i}]: {exc}") from exc
        return self
