"""The dialogue manager: drives one script for one account. Pure: no clock, no I/O.

The caller (a text simulation, a pipecat call session, a test) alternates::

    utterance = dm.start()
    while not dm.done:
        event = <what the callee did, with its time since the call started>
        utterance = dm.handle(event)     # None when the callee hung up

Every bot utterance, callee event, NLU result and routing decision lands in
:attr:`DialogueManager.record`, which is what scoring, storage and review consume.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from jinja2 import Template

from bot.core.account import Account, template_variables
from bot.core.script_model import LanguagePack
from bot.core.scripts import CompiledNode, Script
from bot.core.templating import render
from bot.core.vocab import Announcement, EntityLabel, Intent, Outcome
from nlu.phonetic import sounds_like
from nlu.reading.schema import Act
from nlu.types import IntentScore, NluContext, NluResult


class Analyzer(Protocol):
    """What the dialogue needs from the NLU layer."""

    def analyze(self, text: str, context: NluContext) -> NluResult: ...


class EventKind(StrEnum):
    SPEECH = "speech"
    SILENCE = "silence"  # no input before the gateway's timeout
    DTMF = "dtmf"
    HANGUP = "hangup"


@dataclass(frozen=True, slots=True)
class CalleeEvent:
    kind: EventKind
    text: str = ""
    #: Seconds since the call was answered (drives the duration budget).
    at: float = 0.0
    #: The callee started talking while the prompt was still playing (barge-in): the
    #: question may not have been heard in full.
    interrupted: bool = False
    #: Other readings of the same speech (the recogniser's n-best, best first). Only the
    #: identity gate looks at them, for the holder's name. An empty ``text`` with
    #: ``kind`` speech is speech heard but not understood.
    alternatives: tuple[str, ...] = ()

    @classmethod
    def speech(
        cls,
        text: str,
        at: float = 0.0,
        *,
        interrupted: bool = False,
        alternatives: tuple[str, ...] = (),
    ) -> CalleeEvent:
        return cls(EventKind.SPEECH, text, at, interrupted, alternatives)

    @classmethod
    def silence(cls, at: float = 0.0) -> CalleeEvent:
        return cls(EventKind.SILENCE, "", at)

    @classmethod
    def dtmf(cls, digit: str, at: float = 0.0) -> CalleeEvent:
        return cls(EventKind.DTMF, digit, at)

    @classmethod
    def hangup(cls, at: float = 0.0) -> CalleeEvent:
        return cls(EventKind.HANGUP, "", at)


class UtteranceKind(StrEnum):
    PROMPT = "prompt"
    REPROMPT = "reprompt"
    REPEAT = "repeat"
    CLOSING = "closing"


@dataclass(frozen=True, slots=True)
class BotUtterance:
    text: str
    #: Topic key of the question asked (the callee simulator answers by it).
    topic: str
    node_id: str
    kind: UtteranceKind
    #: True for the closing: play it, then hang up.
    final: bool = False
    #: The caller said they hear badly: a voice should speak this slower.
    slow: bool = False


@dataclass(frozen=True, slots=True)
class Turn:
    """One entry of the call's record."""

    role: str  # "bot" or "callee"
    at: float
    node_id: str
    topic: str
    text: str
    event: str  # utterance kind for the bot, event kind for the callee
    nlu: NluResult | None = None
    decision: str = ""


@dataclass(frozen=True, slots=True)
class Answer:
    """A callee answer to a question, as scoring sees it."""

    node_id: str
    topic: str
    nlu: NluResult


@dataclass
class DialogueRecord:
    script_ref: str
    script_digest: str
    outcome: Outcome | None = None
    identity_confirmed: bool = False
    #: Why the call ended: "script", "callee_hangup", "budget_turns", "budget_time",
    #: "announcement".
    ended_by: str = ""
    turns: list[Turn] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    refusals: int = 0
    no_inputs: int = 0
    #: The caller asked for a person: a person calls back (never counted as a refusal).
    handoff_requested: bool = False
    #: A carrier announcement answered (the outcome is then ``voicemail``, as the
    #: persona contract labels them; the policy reads the kind).
    announcement: Announcement | None = None

    def answered_topics(self) -> set[str]:
        return {a.topic for a in self.answers}


class DialogueError(RuntimeError):
    pass


def _han(text: str) -> list[str]:
    """The Chinese characters of ``text`` (what the gate's length limits count)."""
    return [c for c in text if "\u3400" <= c <= "\u9fff"]


def _with_intent(nlu: NluResult, intent: Intent, source: str) -> NluResult:
    return replace(nlu, intent=IntentScore(intent, nlu.intent.confidence, source))


_DTMF_TEXT = "<dtmf {}>"
#: Readings that say the speaker is not the holder: the holder's name in them is never a
#: confirmation.
_SOMEONE_ELSE = frozenset({Act.DENY, Act.THIRD_PARTY, Act.WRONG_NUMBER, Act.ANNOUNCEMENT})
#: Intents that say the speaker is not the holder (or no one is): an alternative reading
#: with the holder's name never overrides them.
_NOT_THE_HOLDER = frozenset(
    {Intent.DENY, Intent.THIRD_PARTY, Intent.WRONG_NUMBER, Intent.VOICEMAIL, Intent.REFUSE}
)
#: Sounds that are not an answer at the identity gate: a bare "嗯" may be "huh?" as well
#: as "yes", and a bare "喂" is a hello.
_FILLERS = frozenset("嗯恩啊阿哦噢喔呃额哎诶欸唔喂嗨")
#: The longest answer at the identity gate that counts as a plain yes (see
#: ``answer_complete``): "嗯，是我本人" fits, "是我，你们哪个银行的" does not.
_PLAIN_YES_CHARS = 6
#: What a plain yes is read as: a confirmation, perhaps with a hello ("喂，是我").
_PLAIN_YES_ACTS = frozenset({Act.CONFIRM, Act.GREETING})


class DialogueManager:
    """Runs ``script`` for ``account``; see the module docstring for the protocol."""

    def __init__(
        self,
        script: Script,
        account: Account,
        analyzer: Analyzer,
        language: LanguagePack,
        *,
        bank_name: str,
        max_turns: int = 30,
        max_seconds: float = 420.0,
        refusals_to_end: int = 3,
        bank_hotline: str = "",
    ) -> None:
        self.script = script
        self.account = account
        self.analyzer = analyzer
        self.language = language
        self.bank_name = bank_name
        self.max_turns = max_turns
        self.max_seconds = max_seconds
        self.refusals_to_end = refusals_to_end
        self.record = DialogueRecord(script.ref, script.digest)
        self._context = template_variables(account, bank_name, identity_confirmed=False)
        self._known_names = account.known_names()
        self._node: CompiledNode | None = None
        self._last: BotUtterance | None = None
        self._retries = 0
        self._repeats = 0
        self._consecutive_refusals = 0
        self._callee_turns = 0
        self._now = 0.0
        self._started = False
        #: Replies to side remarks, said before the next prompt; acts already replied to.
        self._preface: list[str] = []
        self._replied: set[Act] = set()
        self._slow = False
        #: Identity gate: the callee was heard at this node (speech, even unclear), and
        #: the re-prompt offering the keypad was said; what was said there before.
        self._heard = False
        self._keypad_offered = False
        self._gate_texts: list[str] = []
        self._affirmations = [re.compile(p) for p in language.identity_affirmations]
        hotline = bank_hotline or language.hotline_fallback.format(bank_name=bank_name)
        self._reply_vars = {"bank_name": bank_name, "hotline": hotline}

    # -- public API ---------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.record.outcome is not None

    @property
    def current_topic(self) -> str:
        return self._node.spec.topic if self._node else "default"

    @property
    def expected_name(self) -> str:
        """The name the callee's next answer may say: the holder's at the identity gate,
        else ``""``. A speech recogniser may expect it (a decode hint); nothing else."""
        gate = self._node.spec.gate if self._node and not self.done else None
        return self.account.name if gate == "identity" else ""

    def start(self) -> BotUtterance:
        if self._started:
            raise DialogueError("start() called twice")
        self._started = True
        return self._enter(self.script.start)

    def handle(self, event: CalleeEvent) -> BotUtterance | None:
        """Consume one callee event; return what the bot says next (None when the call
        ends without a word: the callee hung up, or a carrier announcement answered)."""
        if not self._started or self.done:
            raise DialogueError("handle() called before start() or after the call ended")
        node = self._node
        assert node is not None
        self._now = max(self._now, event.at)
        if event.kind is EventKind.HANGUP:
            self._log_callee(node, event, None, "callee hung up")
            self._finish(Outcome.HUNG_UP, "callee_hangup")
            return None
        self._callee_turns += 1
        if event.kind is EventKind.SILENCE:
            return self._on_silence(node, event)
        nlu = self._understand(node, event)
        over = self._over_budget()
        if over:
            self._log_callee(node, event, nlu, f"budget exhausted ({over})")
            self.record.ended_by = over
            return self._enter(self.script.handlers.budget)
        announcement = self._announcement(node, nlu)
        if announcement is not None:
            self.record.announcement = announcement
            why = f"carrier announcement ({announcement.value}): end without a word"
            self._log_callee(node, event, nlu, why)
            self._finish(Outcome.VOICEMAIL, "announcement")
            return None
        return self._on_answer(node, event, nlu)

    def _announcement(self, node: CompiledNode, nlu: NluResult) -> Announcement | None:
        """The carrier announcement a voicemail reading is (the language pack's phrases,
        in what was said at this question), unless it invites a message."""
        if nlu.intent.intent is not Intent.VOICEMAIL or not self.language.announcements:
            return None
        text = "".join(self._gate_texts) if node.spec.gate == "identity" else nlu.text
        if any(p in text for p in self.language.leave_message):
            return None
        for kind, phrases in self.language.announcements.items():
            if any(p in text for p in phrases):
                return kind
        return None

    # -- event handling -----------------------------------------------------------

    def _over_budget(self) -> str:
        if self._callee_turns >= self.max_turns:
            return "budget_turns"
        if self._now >= self.max_seconds:
            return "budget_time"
        return ""

    def _on_silence(self, node: CompiledNode, event: CalleeEvent) -> BotUtterance:
        self.record.no_inputs += 1
        over = self._over_budget()
        if over:
            self._log_callee(node, event, None, f"silence; budget exhausted ({over})")
            self.record.ended_by = over
            return self._enter(self.script.handlers.budget)
        if self._retries < node.spec.retries:
            self._retries += 1
            self._log_callee(node, event, None, "no input: re-prompt")
            return self._reprompt(node, node.no_input)
        if self._heard and node.spec.gate == "identity":
            # Someone is on the line ("喂？" and waiting, or an answer not understood):
            # never "no answer". Offer the keypad once, then close as unverified.
            if self._may_offer_keypad(node):
                self._log_callee(node, event, None, "no input after speech: offer the keypad")
                return self._reprompt(node, node.no_match)
            target = node.spec.on.get("no_match") or node.spec.default
            self._log_callee(node, event, None, f"no input after speech: move on to {target}")
            return self._route(node, target)
        target = node.spec.on.get("no_input") or node.spec.default
        self._log_callee(node, event, None, f"no input: move on to {target}")
        return self._route(node, target)

    def _understand(self, node: CompiledNode, event: CalleeEvent) -> NluResult:
        if event.kind is EventKind.DTMF:
            intent = node.spec.dtmf.get(event.text) or self.language.dtmf.get(event.text)
            text = _DTMF_TEXT.format(event.text)
            score = IntentScore(intent or Intent.UNCLEAR, 1.0, "dtmf")
            return NluResult(raw_text=text, text=text, intent=score)
        ctx = NluContext(topic=node.spec.topic, known_names=self._known_names)
        nlu = self.analyzer.analyze(event.text, ctx)
        if node.spec.gate == "identity":
            self._heard = True
            nlu = self._identity_reading(nlu, event.alternatives, ctx)
        return nlu

    def _identity_reading(
        self, nlu: NluResult, alternatives: tuple[str, ...], ctx: NluContext
    ) -> NluResult:
        """The identity gate's corrections of the NLU's intent; what was said is kept
        for the next answer at the gate (a greeting in two turns)."""
        earlier, self._gate_texts = self._gate_texts, [*self._gate_texts, nlu.text]
        return self._gate_reading(nlu, alternatives, earlier, ctx)

    def _gate_reading(
        self,
        nlu: NluResult,
        alternatives: tuple[str, ...],
        earlier: list[str],
        ctx: NluContext,
    ) -> NluResult:
        """The identity gate's reading of one answer (pure; see the branches)."""
        if self._greeting_heard(nlu, alternatives, earlier, ctx):
            return _with_intent(nlu, Intent.VOICEMAIL, "greeting")
        intent = nlu.intent.intent
        if intent is not Intent.AFFIRM and (
            nlu.intent.source != "rule" or intent in (Intent.INFORM, Intent.UNCLEAR)
        ):
            if self._names_holder(nlu):
                # "我是张伟，您说" confirms identity whatever the model made of the rest; a
                # rule's verdict (an answering machine that says its owner's name) stands.
                # The name said back with no yes ("谷春梅？", a stranger's echo whose
                # "不认识" the line lost) is asked again.
                confirmed = self._yes_in(nlu)
                return _with_intent(nlu, Intent.AFFIRM if confirmed else Intent.UNCLEAR, "rule")
        elif intent is Intent.AFFIRM and (
            self._is_filler(nlu.text) or self._names_someone_else(nlu) or not self._yes_in(nlu)
        ):
            # No confirmation of who is speaking, ask again: a bare "嗯" (also "huh?");
            # "我是李明" to "您是张伟本人吗" (yes to something, or a misheard name); no
            # yes in the words at all (a fragment of a line, "飞" for "谁？", read as a
            # yes). The reading's third_party beside a yes is no reason: it hears one in
            # "我是阎志刚" and in a holder's misheard "我是李铺" alike.
            nlu = _with_intent(nlu, Intent.UNCLEAR, "rule")
        if nlu.intent.intent is Intent.AFFIRM or nlu.intent.intent in _NOT_THE_HOLDER:
            return nlu
        heard = self._yes_in(nlu) and self._holder_in_alternatives(nlu, alternatives, ctx)
        return _with_intent(nlu, Intent.AFFIRM, "n-best") if heard else nlu

    def _yes_in(self, nlu: NluResult) -> bool:
        """A yes in the words (``_affirmed``), or 是 said right before the holder's name
        ("使我火是刘洋": the line lost the 是我, the name came through)."""
        name = self.account.name
        if self._affirmed(nlu.text) or f"是{name}" in nlu.text:
            return True
        return any(
            e.label is EntityLabel.PERSON
            and e.start > 0
            and nlu.text[e.start - 1] == "是"
            and sounds_like(e.text, name)
            for e in nlu.entities
        )

    def _affirmed(self, text: str) -> bool:
        """The words say "yes, it's me" (the language pack's ``identity_affirmations``;
        a pack without them leaves the decision to the models)."""
        return not self._affirmations or any(p.search(text) for p in self._affirmations)

    def answer_complete(self, text: str) -> bool:
        """At the identity question, whether the answer so far is a plain yes that needs
        no wait for more ("是的", "对，是我"): at most ``_PLAIN_YES_CHARS`` characters the
        gate takes as a confirmation, read as nothing but a yes (and a hello). A voice
        path may hand it over without waiting out the end-of-turn silence. Elsewhere
        ``False``: a longer answer keeps its pauses."""
        return self._short_gate_yes(text) == "plain"

    def answer_may_continue(self, text: str) -> bool:
        """At the identity question, whether an answer just closed may be only its start:
        a question back ("谁？", "谷春梅？") or a fragment of at most two characters with
        no yes in it, or a short yes that is read as more than a yes. A voice path waits
        a moment for the rest before handing it over: a stranger's "谁？……买买提江？不认识"
        split at its first pause would otherwise be read in pieces, and "喂？段永福啊？……
        他不在，我是他老婆" was heard "喂对有说啊" (a yes, and a question back) before its
        second half. A plain "是的" is never held; waiting on a short "不是" costs a
        stranger a moment and nothing else. Elsewhere ``False``."""
        text = text.strip()
        if not text or not self.expected_name:
            return False
        if self._affirmed(text):
            return self._short_gate_yes(text) == "more"
        return text[-1] in "?？" or len(_han(text)) <= 2

    def _short_gate_yes(self, text: str) -> str:
        """``"plain"``: a short answer the gate confirms on, read as a yes and nothing
        else; ``"more"``: a short one it confirms on that is read as more (a question
        back, a third party); ``""``: anything else."""
        text = text.strip()
        if not text or not self.expected_name or len(_han(text)) > _PLAIN_YES_CHARS:
            return ""
        ctx = NluContext(topic=self.current_topic, known_names=self._known_names)
        nlu = self.analyzer.analyze(text, ctx)
        if self._gate_reading(nlu, (), self._gate_texts, ctx).intent.intent is not Intent.AFFIRM:
            return ""
        return "plain" if nlu.reading.acts <= _PLAIN_YES_ACTS else "more"

    def _greeting_heard(
        self,
        nlu: NluResult,
        alternatives: tuple[str, ...],
        earlier: list[str],
        ctx: NluContext,
    ) -> bool:
        """An answering machine's greeting the NLU did not see in the best reading: in
        one of the recogniser's other readings, or in the turn read after what was said
        before at this question. A greeting has a pause that can end the turn, and on a
        noisy line neither half alone may read as one ("你好年波打滴用破战时无法接听",
        then "请再提示因货流源", with "请再提示因货留言" in the n-best): the gate would take
        the halves for two refusals and close the call as unverified (``busy``), having
        asked a machine twice. Taking a person for a machine costs one neutral message
        and a retry, as ``busy`` does."""
        if nlu.intent.intent is Intent.VOICEMAIL:
            return False
        readings = list(alternatives)
        if earlier:
            before = "".join(earlier)
            readings += [before + t for t in (nlu.text, *alternatives)]
        return any(
            self.analyzer.analyze(text, ctx).intent.intent is Intent.VOICEMAIL
            for text in dict.fromkeys(readings)
            if text
        )

    def _is_filler(self, text: str) -> bool:
        return all(c in _FILLERS for c in _han(text))

    def _names_someone_else(self, nlu: NluResult) -> bool:
        """A name that is not the holder's (nor sounds like it) and no holder's name."""
        people = nlu.values(EntityLabel.PERSON)
        name = self.account.name
        return (
            bool(people)
            and name not in people
            and not nlu.values(EntityLabel.RELATIONSHIP)
            and not any(sounds_like(p, name) for p in people)
        )

    def _holder_in_alternatives(
        self, nlu: NluResult, alternatives: tuple[str, ...], ctx: NluContext
    ) -> bool:
        """The recogniser's other readings name the holder, and the best one says
        something that sounds like the name (never a bare "嗯" or "喂"): 章为 read as
        张伟. A reading that puts the name in a denial or a kinship doesn't count."""
        if not alternatives or nlu.values(EntityLabel.RELATIONSHIP):
            return False
        if not sounds_like(nlu.text, self.account.name, within=True):
            return False
        for text in alternatives:
            alt = self.analyzer.analyze(text, ctx)
            if (
                self.account.name in alt.values(EntityLabel.PERSON)
                and not alt.values(EntityLabel.RELATIONSHIP)
                and alt.intent.intent not in _NOT_THE_HOLDER
                and not alt.reading.acts & {Act.DENY, Act.WRONG_NUMBER, Act.ANNOUNCEMENT}
            ):
                return True
        return False

    def _names_holder(self, nlu: NluResult) -> bool:
        """The callee names the holder as themselves: the name is said, not negated
        ("我不是张伟"), no kinship word makes it about someone else ("我是张伟的老伴"), and
        the reading does not hear a stranger repeating the name ("张伟？不认识")."""
        return (
            self.account.name in nlu.values(EntityLabel.PERSON)
            and not nlu.values(EntityLabel.RELATIONSHIP)
            and not nlu.reading.acts & _SOMEONE_ELSE
        )

    def _side_remarks(self, nlu: NluResult) -> str:
        """Queue replies to what the caller asked or said besides answering; returns the
        handler to end on when a confirmed holder insists on a person, else ``""``."""
        acts = nlu.reading.acts
        if Act.WANT_HUMAN in acts:
            if self.record.handoff_requested:
                confirmed = self.record.identity_confirmed
                return self.script.handlers.handoff if confirmed else self.script.handlers.callback
            self.record.handoff_requested = True
        if Act.HARD_OF_HEARING in acts:
            self._slow = True
        for act in (Act.ASK_WHO, Act.DOUBT_CALLER, Act.WANT_HUMAN, Act.HARD_OF_HEARING):
            text = getattr(self.language.replies, act.value)
            if act in acts and act not in self._replied and text:
                self._replied.add(act)
                self._preface.append(text.format_map(self._reply_vars))
        return ""

    def _take_preface(self) -> str:
        text, self._preface = "".join(self._preface), []
        return text

    def _on_answer(self, node: CompiledNode, event: CalleeEvent, nlu: NluResult) -> BotUtterance:
        intent = nlu.intent.intent
        spec = node.spec
        handlers = self.script.handlers
        ending = self._side_remarks(nlu)
        if ending:
            if spec.gate is None:
                self.record.answers.append(Answer(node.id, spec.topic, nlu))
            self._log_callee(node, event, nlu, "asked for a person again: a person calls back")
            return self._enter(ending)
        if intent is Intent.VOICEMAIL:
            self._log_callee(node, event, nlu, "voicemail detected")
            return self._enter(handlers.voicemail)
        if intent is Intent.ASK_REPEAT and self._repeats < handlers.repeat_limit:
            self._repeats += 1
            self._log_callee(node, event, nlu, "repeat the prompt")
            return self._repeat()
        inaudible = not event.text.strip() and event.kind is EventKind.SPEECH
        if (
            (event.interrupted or inaudible)
            and intent is Intent.UNCLEAR
            and self._repeats < handlers.repeat_limit
        ):
            # Talked over a prompt without answering it ("喂？", a cough), or speech the
            # recogniser could not make out: ask again as it was; a real answer is
            # consumed as usual.
            self._repeats += 1
            why = "speech not understood" if inaudible else "barge-in without an answer"
            self._log_callee(node, event, nlu, f"{why}: re-ask")
            return self._reask()
        if intent is Intent.BUSY_CALLBACK and intent.value not in spec.on:
            self._log_callee(node, event, nlu, "callback requested")
            return self._enter(handlers.callback)
        if intent is Intent.REFUSE and Act.WANT_HUMAN in nlu.reading.acts:
            # "我不跟机器说，找个人来": a request for a person, not a refusal.
            intent = Intent.UNCLEAR if spec.gate else Intent.INFORM
        if intent is Intent.REFUSE:
            self.record.refusals += 1
            self._consecutive_refusals += 1
            if self._consecutive_refusals >= self.refusals_to_end:
                # Refusing question after question ends the call; a partial refusal is
                # evidence, and the call completes with a band that reflects it.
                self._log_callee(node, event, nlu, "repeated refusal: close politely")
                return self._enter(handlers.refused)
        else:
            self._consecutive_refusals = 0
        if intent.value in spec.on and intent is not Intent.UNCLEAR:
            target = spec.on[intent.value]
            decision = f"{intent.value} -> {target}"
        elif self._no_match(node, intent):
            if self._retries < spec.retries or self._may_offer_keypad(node):
                self._retries += 1
                self._log_callee(node, event, nlu, f"{intent.value}: clarifying re-prompt")
                return self._reprompt(node, node.no_match)
            target = spec.on.get(intent.value) or spec.on.get("no_match") or spec.default or ""
            decision = f"{intent.value} after re-prompt -> {target}"
        else:
            target = spec.default or ""
            decision = f"{intent.value} -> {target}"
        if spec.gate is None:
            self.record.answers.append(Answer(node.id, spec.topic, nlu))
        target, followup = self._followup(node, intent, nlu, target)
        self._log_callee(
            node, event, nlu, decision + (f"; follow-up {followup}" if followup else "")
        )
        if spec.gate == "identity" and intent is Intent.AFFIRM:
            self._confirm_identity()
        return self._route(node, target)

    def _refused_nearly_everything(self) -> bool:
        """Refusals not in a row ("不说" / a rude non-answer / "不说") still make a refused
        call when at most one topic got a real answer."""
        refused: set[str] = set()
        answered: set[str] = set()
        for a in self.record.answers:
            refusal = a.nlu.intent.intent is Intent.REFUSE or Act.REFUSE in a.nlu.reading.acts
            (refused if refusal else answered).add(a.topic)
        return len(refused) >= 2 and len(answered - refused) <= 1

    def _no_match(self, node: CompiledNode, intent: Intent) -> bool:
        """Unclear answers, and at the identity gate anything it does not route."""
        if intent is Intent.UNCLEAR or intent is Intent.ASK_REPEAT:
            return True
        return node.spec.gate == "identity" and intent.value not in node.spec.on

    def _may_offer_keypad(self, node: CompiledNode) -> bool:
        """At the identity gate the clarifying re-prompt (which offers the keypad: "按1表示
        是") is said once even when the retries went on a no-input re-prompt."""
        return (
            node.spec.gate == "identity"
            and node.no_match is not None
            and bool(node.spec.dtmf)
            and not self._keypad_offered
        )

    def _followup(
        self, node: CompiledNode, intent: Intent, nlu: NluResult, target: str
    ) -> tuple[str, str]:
        for f in node.spec.followups:
            if f.if_intent and intent not in f.if_intent:
                continue
            if f.if_missing is not None and nlu.values(f.if_missing):
                continue
            return f.ask, f.ask
        return target, ""

    def _confirm_identity(self) -> None:
        self.record.identity_confirmed = True
        self._context = template_variables(self.account, self.bank_name, identity_confirmed=True)

    # -- moving through the graph -------------------------------------------------

    def _route(self, node: CompiledNode, target: str | None) -> BotUtterance:
        if not target:
            raise DialogueError(f"{self.script.ref}: node '{node.id}' has nowhere to go")
        return self._enter(target)

    def _enter(self, node_id: str) -> BotUtterance:
        """Say ``node_id`` and the statements chained after it, up to a question or an end."""
        parts: list[str] = []
        seen: set[str] = set()
        while True:
            if node_id in seen:
                raise DialogueError(f"{self.script.ref}: statement loop at '{node_id}'")
            seen.add(node_id)
            node = self.script.nodes[node_id]
            spec = node.spec
            if spec.requires and any(not self._context.get(v) for v in spec.requires):
                assert spec.default is not None
                self._log_bot(node, "", "skip", f"skipped: {', '.join(spec.requires)} empty")
                node_id = spec.default
                continue
            parts.append(render(node.say, self._context))
            if len(parts) == 1 and spec.end is None:
                parts.insert(0, self._take_preface())
            if spec.next is not None:
                node_id = spec.next
                continue
            self._node = node
            self._retries = 0
            self._repeats = 0
            self._heard = False
            self._keypad_offered = False
            self._gate_texts = []
            if spec.end is not None:
                utterance = BotUtterance(
                    "".join(parts), spec.topic, node.id, UtteranceKind.CLOSING, True, self._slow
                )
                self._say(utterance, f"end: {spec.end.value}")
                self._finish(spec.end, self.record.ended_by or "script")
                return utterance
            utterance = BotUtterance(
                "".join(parts), spec.topic, node.id, UtteranceKind.PROMPT, slow=self._slow
            )
            self._say(utterance, "")
            return utterance

    def _reprompt(self, node: CompiledNode, template: Template | None) -> BotUtterance:
        """Say the node's re-prompt, or its prompt again when it has none. To a caller
        who hears badly, the question alone: shorter than any re-prompt."""
        chosen = node.say if self._slow else template or node.say
        if template is not None and template is node.no_match:
            self._keypad_offered = True
        text = self._take_preface() + render(chosen, self._context)
        utterance = BotUtterance(
            text, node.spec.topic, node.id, UtteranceKind.REPROMPT, slow=self._slow
        )
        self._say(utterance, "re-prompt")
        return utterance

    def _repeat(self) -> BotUtterance:
        assert self._last is not None
        last = self._last
        prefix = self._take_preface() or self.language.repeat_prefix
        text = last.text
        if self._slow and self._node is not None and self._node.id == last.node_id:
            text = render(self._node.say, self._context)  # the question, without the preamble
        utterance = BotUtterance(
            prefix + text, last.topic, last.node_id, UtteranceKind.REPEAT, slow=self._slow
        )
        self._say(utterance, "repeat")
        return utterance

    def _reask(self) -> BotUtterance:
        assert self._last is not None
        last = self._last
        utterance = BotUtterance(last.text, last.topic, last.node_id, UtteranceKind.REPEAT)
        self._say(utterance, "re-ask after barge-in")
        return utterance

    def _finish(self, outcome: Outcome, ended_by: str) -> None:
        if outcome is Outcome.COMPLETED and self._refused_nearly_everything():
            outcome = Outcome.REFUSED
        self.record.outcome = outcome
        self.record.ended_by = ended_by

    # -- record -------------------------------------------------------------------

    def _say(self, utterance: BotUtterance, decision: str) -> None:
        if utterance.kind is not UtteranceKind.REPEAT:
            self._last = utterance
        self.record.turns.append(
            Turn(
                "bot",
                self._now,
                utterance.node_id,
                utterance.topic,
                utterance.text,
                utterance.kind.value,
                None,
                decision,
            )
        )

    def _log_bot(self, node: CompiledNode, text: str, event: str, decision: str) -> None:
        self.record.turns.append(
            Turn("bot", self._now, node.id, node.spec.topic, text, event, None, decision)
        )

    def _log_callee(
        self, node: CompiledNode, event: CalleeEvent, nlu: NluResult | None, decision: str
    ) -> None:
        self.record.turns.append(
            Turn(
                "callee",
                event.at,
                node.id,
                node.spec.topic,
                event.text,
                event.kind.value,
                nlu,
                decision,
            )
        )
