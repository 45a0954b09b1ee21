"""Synthetic personas for ``bot simulate`` and the throughput benchmark.

:func:`generate` yields persona dicts in the file format (``id``, ``language``,
``account``, ``answers``, ``expected``), composed from the phrase banks of
``phrasebank.yaml``: each persona follows one *archetype* (salary owner, card sold,
voicemail...) whose templates are filled with slots (names, cities, jobs, kin terms,
amounts as Chinese numerals or digits). The ground truth follows from the archetype, and
an entity is expected only when an answer actually says it (the slot was used) under a
topic the script will ask (accounts without a flagged transaction may never be asked
about fund source or counterparty), so a careful extractor can find what
``expected.entities`` lists.

Deterministic for a seed; the archetype is the last part of each id
(``syn0_000042_sold``, see :func:`archetype_of`). All parsing and checking of the bank
happens once, in :func:`load_bank`, so generation itself is only random choices and
``str.format_map`` (well above 20,000 personas a second on one core).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import random
import string
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.core.vocab import EntityLabel, Outcome, Purpose, RiskBand, Scenario, Topic

BANK_PATH = Path(__file__).with_name("phrasebank.yaml")

#: Slots a template may use (see the header of ``phrasebank.yaml``).
SLOTS = frozenset(
    {
        "name",
        "surname",
        "he",
        "spouse_self",
        "child",
        "city",
        "district",
        "branch",
        "occupation",
        "employer",
        "business",
        "goods",
        "platform",
        "kin",
        "kin_name",
        "friend",
        "amount",
        "other_name",
        "txn_counterparty",
    }
)
#: Slots whose entity value is a canonical form rather than the words said.
CANONICAL_SLOTS = frozenset({"kin", "friend", "amount"})
#: Account-number prefixes (bank identification numbers) for generated accounts.
BINS = ("622588", "621700", "622848", "623052", "621483", "622202", "621226", "622700")
PHONE_PREFIXES = ("138", "139", "150", "151", "158", "177", "186", "189", "199", "135")
#: Transactions are dated in this window (the evaluation's calendar, as in the samples).
TXN_DATES = tuple(
    f"2026-{m:02d}-{d:02d}" for m, days in ((9, 30), (10, 31), (11, 20)) for d in range(1, days + 1)
)
#: Probability of a flagged transaction when the scenario is not ``suspicious_txn``.
TXN_RATE_OTHER = 0.35
SAME_PREFIX = "@same:"
#: Topics a script may skip when the account has no flagged transaction (the short
#: scripts do): without a txn, answers to these are no evidence for expected entities.
TXN_TOPICS = frozenset({Topic.FUND_SOURCE.value, Topic.COUNTERPARTY.value})
#: Canonical relationships of women (for a plausible given name of the relative).
FEMALE_KIN = frozenset({"母亲", "姐姐", "妹妹", "女儿", "妻子"})


class BankError(ValueError):
    """The phrase bank is inconsistent (unknown slot, bank, topic, vocabulary value...)."""


@dataclass(frozen=True)
class Template:
    text: str | None  # None: silence
    fields: frozenset[str] = frozenset()
    same_as: str | None = None  # "@same:identity": repeat that topic's answer

    def render(self, slots: Mapping[str, str], answers: Mapping[str, str | None]) -> str | None:
        if self.same_as is not None:
            return answers.get(self.same_as)
        return None if self.text is None else self.text.format_map(slots)


@dataclass(frozen=True)
class EntitySpec:
    label: str
    slot: str | None  # "{slot}" in the bank
    literal: str | None


@dataclass(frozen=True)
class Archetype:
    name: str
    outcome: Outcome
    band: RiskBand | None
    scenarios: tuple[Scenario, ...]
    score_range: tuple[float, float]
    amount_kind: str | None
    txn_amount_kind: str | None
    txn_counterparty: Template | None
    answers: tuple[tuple[str, tuple[Template, ...]], ...]
    entities: tuple[EntitySpec, ...]
    kin_words: tuple[str, ...] = ()
    purpose_cues: tuple[str, ...] = ()


@dataclass(frozen=True)
class Kin:
    word: str
    canonical: str
    same_surname: bool
    holder: str | None


@dataclass
class Bank:
    """The phrase bank, parsed and checked."""

    mix: dict[str, float]
    surnames: tuple[str, ...]
    given: dict[str, tuple[str, ...]]
    cities: tuple[tuple[str, str, tuple[str, ...]], ...]
    jobs: tuple[tuple[str, tuple[str, ...]], ...]
    businesses: tuple[tuple[str, str], ...]
    platforms: tuple[str, ...]
    generic_employer: tuple[str, ...]
    kin: tuple[Kin, ...]
    friends: tuple[tuple[str, str], ...]
    amounts: dict[str, tuple[int, int]]
    archetypes: dict[str, Archetype] = field(default_factory=dict)


# ---------------------------------------------------------------- Chinese numerals

_DIGITS = "零一二三四五六七八九"


def _section(x: int, leading: bool) -> str:
    """0 < x < 10000 in Chinese; ``leading``: the number starts here (十五, not 一十五)."""
    out: list[str] = []
    zero = False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d = x // value % 10
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out.append("零")
            zero = False
        if d == 2 and unit in ("千", "百") and not out:
            ch = "两"
        elif d == 1 and unit == "十" and not out and leading:
            ch = ""
        else:
            ch = _DIGITS[d]
        out.append(ch + unit)
    return "".join(out)


def zh_number(n: int) -> str:
    """``n`` (0 <= n < 10**8) as spoken Chinese numerals: 10500 -> 一万零五百, 2300 -> 两千三百."""
    if not 0 <= n < 10**8:
        raise ValueError(f"{n} out of range")
    if n == 0:
        return "零"
    high, low = divmod(n, 10000)
    text = ""
    if high:
        text = ("两" if high == 2 else _section(high, True)) + "万"
    if low:
        if high and low < 1000:
            text += "零"
        text += _section(low, not high)
    return text


def zh_colloquial(n: int) -> str | None:
    """The clipped form people say (1500 -> 一千五, 126000 -> 十二万六), or None if ``n``
    has none (the last significant digit must be a hundred or a thousand, just below a
    non-zero digit)."""
    digits = str(n).rstrip("0")
    place = len(str(n)) - len(digits)
    if place not in (2, 3) or len(digits) < 2 or digits[-2] == "0":
        return None
    return zh_number(n)[:-1]


def amount_forms(n: int) -> tuple[str, ...]:
    """Ways to say ``n`` yuan: Arabic digits, Chinese numerals, clipped, with 块/元/万."""
    zh = zh_number(n)
    forms = [f"{n}块", f"{n}元", f"{n}块钱", f"{zh}块", f"{zh}元", f"{zh}块钱"]
    colloquial = zh_colloquial(n)
    if colloquial:
        forms += [colloquial, colloquial]
    if n >= 10000 and n % 10000 == 0:
        forms += [f"{n // 10000}万", f"{n // 10000}万块"]
    return tuple(forms)


def round_amount(value: float, digits: int = 2) -> int:
    """``value`` kept to ``digits`` significant digits, the way people remember amounts:
    12345 -> 12000 (126400 -> 126000 with three)."""
    n = max(int(value), 1)
    magnitude: int = 10 ** max(len(str(n)) - digits, 0)
    return max(round(n / magnitude) * magnitude, 1)


# ---------------------------------------------------------------- bank loading

_FORMATTER = string.Formatter()


def _template(raw: Any, where: str) -> Template:
    if raw is None or raw == "null":
        return Template(None)
    if not isinstance(raw, str):
        raise BankError(f"{where}: a template must be text or null, not {raw!r}")
    if raw.startswith(SAME_PREFIX):
        topic = raw[len(SAME_PREFIX) :]
        if topic not in Topic._value2member_map_:
            raise BankError(f"{where}: '{raw}' names an unknown topic")
        return Template(None, same_as=topic)
    try:
        fields = frozenset(f for _, f, _, _ in _FORMATTER.parse(raw) if f is not None)
    except ValueError as exc:
        raise BankError(f"{where}: {exc} in '{raw}'") from exc
    unknown = fields - SLOTS
    if unknown:
        raise BankError(f"{where}: unknown slot(s) {sorted(unknown)} in '{raw}'")
    return Template(raw, fields)


def _templates(raw: Any, banks: Mapping[str, Any], where: str) -> tuple[Template, ...]:
    """A topic's templates: a list (items may be "@bank" to inline a shared bank) or a
    single "@bank"."""
    items = raw if isinstance(raw, list) else [raw]
    out: list[Template] = []
    for item in items:
        if isinstance(item, str) and item.startswith("@") and not item.startswith(SAME_PREFIX):
            name = item[1:]
            if name not in banks:
                raise BankError(f"{where}: unknown bank '{item}'")
            out += [_template(t, f"banks.{name}") for t in banks[name]]
        else:
            out.append(_template(item, where))
    if not out:
        raise BankError(f"{where}: no templates")
    return tuple(out)


def _range(raw: Any, where: str) -> tuple[float, float]:
    if not (isinstance(raw, list) and len(raw) == 2 and raw[0] <= raw[1]):
        raise BankError(f"{where}: expected [low, high], got {raw!r}")
    return float(raw[0]), float(raw[1])


def _archetype(
    name: str, raw: Mapping[str, Any], bank: Bank, banks: Mapping[str, Any]
) -> Archetype:
    where = f"archetypes.{name}"
    try:
        outcome = Outcome(raw["outcome"])
        band = RiskBand(raw["band"]) if raw.get("band") else None
        scenarios = tuple(Scenario(s) for s in raw["scenarios"])
    except (KeyError, ValueError) as exc:
        raise BankError(f"{where}: {exc}") from exc
    if (band is None) == (outcome is Outcome.COMPLETED):
        raise BankError(f"{where}: a band is needed for completed and only for completed")
    low, high = _range(raw.get("model_score"), f"{where}.model_score")
    if not 0 <= low <= high <= 1:
        raise BankError(f"{where}.model_score: must lie in [0, 1]")
    for key in ("amount",):
        if raw.get(key) is not None and raw[key] not in bank.amounts:
            raise BankError(f"{where}.{key}: unknown amount kind '{raw[key]}'")
    txn = raw.get("txn") or {}
    if txn.get("amount") is not None and txn["amount"] not in bank.amounts:
        raise BankError(f"{where}.txn.amount: unknown amount kind '{txn['amount']}'")
    answers = []
    for topic, templates in (raw.get("answers") or {}).items():
        if topic not in Topic._value2member_map_:
            raise BankError(f"{where}.answers: '{topic}' is not a topic key")
        answers.append((topic, _templates(templates, banks, f"{where}.answers.{topic}")))
    if not answers or answers[0][0] != Topic.IDENTITY.value:
        raise BankError(f"{where}.answers: identity must come first")
    entities = []
    for label, spec in (raw.get("entities") or {}).items():
        if label not in EntityLabel._value2member_map_:
            raise BankError(f"{where}.entities: unknown label '{label}'")
        spec = str(spec)
        if spec.startswith("{") and spec.endswith("}"):
            slot = spec[1:-1]
            if slot not in SLOTS:
                raise BankError(f"{where}.entities.{label}: unknown slot '{slot}'")
            entities.append(EntitySpec(label, slot, None))
        else:
            if label == EntityLabel.PURPOSE and spec not in Purpose._value2member_map_:
                raise BankError(f"{where}.entities.purpose: '{spec}' is not a purpose")
            entities.append(EntitySpec(label, None, spec))
    if entities and outcome is not Outcome.COMPLETED:
        raise BankError(f"{where}: only completed calls have entities")
    kin_words = tuple(raw.get("kin") or ())
    known = {k.word for k in bank.kin}
    if set(kin_words) - known:
        raise BankError(f"{where}.kin: unknown kin words {sorted(set(kin_words) - known)}")
    counterparty = txn.get("counterparty")
    return Archetype(
        name=name,
        outcome=outcome,
        band=band,
        scenarios=scenarios,
        score_range=(low, high),
        amount_kind=raw.get("amount"),
        txn_amount_kind=txn.get("amount"),
        txn_counterparty=_template(counterparty, f"{where}.txn") if counterparty else None,
        answers=tuple(answers),
        entities=tuple(entities),
        kin_words=kin_words,
        purpose_cues=tuple(raw.get("purpose_cues") or ()),
    )


def parse_bank(data: Mapping[str, Any]) -> Bank:
    """Check and compile a phrase bank (the parsed YAML)."""
    try:
        names = data["names"]
        bank = Bank(
            mix={str(k): float(v) for k, v in data["mix"].items()},
            surnames=tuple(names["surnames"]),
            given={"M": tuple(names["given_male"]), "F": tuple(names["given_female"])},
            cities=tuple((c["name"], c["branch"], tuple(c["districts"])) for c in data["cities"]),
            jobs=tuple((j["title"], tuple(j["employers"])) for j in data["jobs"]),
            businesses=tuple((b["business"], b["goods"]) for b in data["businesses"]),
            platforms=tuple(data["platforms"]),
            generic_employer=tuple(data.get("generic_employer_markers") or ()),
            kin=tuple(
                Kin(k["word"], k["canonical"], bool(k.get("same_surname")), k.get("holder"))
                for k in data["kin"]
            ),
            friends=tuple((f["word"], f["canonical"]) for f in data["friends"]),
            amounts={k: (int(v[0]), int(v[1])) for k, v in data["amounts"].items()},
        )
    except (KeyError, TypeError, IndexError) as exc:
        raise BankError(f"phrase bank: missing or malformed {exc}") from exc
    banks = data.get("banks") or {}
    for name, raw in (data.get("archetypes") or {}).items():
        bank.archetypes[name] = _archetype(name, raw, bank, banks)
    unknown = set(bank.mix) - set(bank.archetypes)
    if unknown:
        raise BankError(f"mix: unknown archetype(s) {sorted(unknown)}")
    return bank


@functools.cache
def load_bank(path: Path = BANK_PATH) -> Bank:
    with path.open(encoding="utf-8") as fh:
        return parse_bank(yaml.safe_load(fh))


def default_mix() -> dict[str, float]:
    """The archetype weights of the shipped phrase bank."""
    return dict(load_bank().mix)


def archetype_of(persona_id: str) -> str:
    """The archetype a generated persona was drawn from (the tail of its id)."""
    return persona_id.split("_", 2)[2]


# ---------------------------------------------------------------- generation


class _Generator:
    def __init__(self, bank: Bank, seed: int, mix: Mapping[str, float]):
        unknown = set(mix) - set(bank.archetypes)
        if unknown:
            raise ValueError(
                f"unknown archetype(s) {sorted(unknown)}; known: {', '.join(bank.archetypes)}"
            )
        if any(w < 0 for w in mix.values()) or sum(mix.values()) <= 0:
            raise ValueError("archetype weights must be >= 0 with a positive total")
        self.bank = bank
        self.seed = seed
        self.rand = random.Random(seed).random
        self.names = [k for k, w in mix.items() if w > 0]
        self.cum = list(itertools.accumulate(mix[k] for k in self.names))
        self.amount_forms: dict[int, tuple[str, ...]] = {}
        self.kins: dict[tuple[str, str], tuple[Kin, ...]] = {}
        for arch in bank.archetypes.values():
            for g in ("M", "F"):
                kins = tuple(
                    k
                    for k in bank.kin
                    if k.holder in (None, g) and (not arch.kin_words or k.word in arch.kin_words)
                )
                self.kins[arch.name, g] = kins or bank.kin

    def _pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.rand() * len(seq))]

    def _amount(self, kind: str) -> int:
        low, high = self.bank.amounts[kind]
        value = low + (high - low) * self.rand()
        return round_amount(value, 3 if value >= 10000 and self.rand() < 0.3 else 2)

    def _amount_text(self, n: int) -> str:
        forms = self.amount_forms.get(n)
        if forms is None:
            forms = self.amount_forms[n] = amount_forms(n)
        return forms[int(self.rand() * len(forms))]

    def persona(self, index: int) -> dict[str, Any]:
        # Random draws index sequences directly (seq[int(random() * len)]): random.choice
        # costs a few Python frames per call and dominated the profile.
        r = self.rand
        bank = self.bank
        arch = bank.archetypes[self.names[bisect.bisect(self.cum, r() * self.cum[-1])]]
        gender = "M" if r() < 0.5 else "F"
        other_gender = "M" if r() < 0.5 else "F"
        surnames = bank.surnames
        surname = surnames[int(r() * len(surnames))]
        given = bank.given[gender]
        name = surname + given[int(r() * len(given))]
        other_given = bank.given[other_gender]
        other_name = surnames[int(r() * len(surnames))] + other_given[int(r() * len(other_given))]
        if other_name == name:
            other_name += "华"
        city, branch, districts = bank.cities[int(r() * len(bank.cities))]
        occupation, employers = bank.jobs[int(r() * len(bank.jobs))]
        employer = employers[int(r() * len(employers))].replace("{city}", city)
        business, goods = bank.businesses[int(r() * len(bank.businesses))]
        kins = self.kins[arch.name, gender]
        kin = kins[int(r() * len(kins))]
        kin_given = bank.given["F" if kin.canonical in FEMALE_KIN else "M"]
        kin_name = (surname if kin.same_surname else surnames[int(r() * len(surnames))]) + (
            kin_given[int(r() * len(kin_given))]
        )
        if kin_name == name:
            kin_name += "明"
        friend, friend_canonical = bank.friends[int(r() * len(bank.friends))]
        amount = self._amount(arch.amount_kind) if arch.amount_kind else 0
        slots = {
            "name": name,
            "surname": surname,
            "he": "他" if gender == "M" else "她",
            "spouse_self": "老婆" if gender == "M" else "老公",
            "child": "儿子" if gender == "M" else "女儿",
            "city": city,
            "district": districts[int(r() * len(districts))],
            "branch": branch,
            "occupation": occupation,
            "employer": employer,
            "business": business,
            "goods": goods,
            "platform": bank.platforms[int(r() * len(bank.platforms))],
            "kin": kin.word,
            "kin_name": kin_name,
            "friend": friend,
            "amount": self._amount_text(amount) if amount else "",
            "other_name": other_name,
            "txn_counterparty": "",
        }
        answers: dict[str, str | None] = {}
        used: set[str] = set()
        used_txn: set[str] = set()  # slots said only under TXN_TOPICS
        for topic, templates in arch.answers:
            tpl = templates[int(r() * len(templates))]
            answers[topic] = tpl.render(slots, answers)
            if topic in TXN_TOPICS:
                used_txn |= tpl.fields
            else:
                used |= tpl.fields

        low, high = arch.score_range
        account: dict[str, Any] = {
            "account_id": f"{BINS[index % len(BINS)]}{self.seed % 1000:03d}{index:07d}",
            "name": name,
            "phone": f"+86{self._pick(PHONE_PREFIXES)}{int(r() * 10**8):08d}",
            "card_last4": "",
            "scenario": self._pick(arch.scenarios).value,
            "model_score": round(low + (high - low) * r(), 2),
            "branch": branch,
        }
        account["card_last4"] = account["account_id"][-4:]
        if arch.txn_amount_kind and (
            account["scenario"] == Scenario.SUSPICIOUS_TXN or r() < TXN_RATE_OTHER
        ):
            txn_amount = (
                amount
                if arch.txn_amount_kind == arch.amount_kind and amount
                else self._amount(arch.txn_amount_kind)
            )
            txn: dict[str, Any] = {"amount": txn_amount, "date": self._pick(TXN_DATES)}
            if arch.txn_counterparty is not None:
                txn["counterparty"] = arch.txn_counterparty.render(slots, answers)
            account["txn"] = txn

        expected: dict[str, Any] = {"outcome": arch.outcome.value}
        if arch.band is not None:
            heard = answers
            if "txn" in account:
                used |= used_txn
            else:
                heard = {t: a for t, a in answers.items() if t not in TXN_TOPICS}
            expected["risk_band"] = arch.band.value
            expected["entities"] = self._entities(
                arch, slots, used, heard, amount, kin.canonical, friend_canonical
            )
        else:
            expected["entities"] = {}
        return {
            "id": f"syn{self.seed}_{index:06d}_{arch.name}",
            "language": "zh",
            "account": account,
            "answers": answers,
            "expected": expected,
        }

    def _entities(
        self,
        arch: Archetype,
        slots: Mapping[str, str],
        used: set[str],
        answers: Mapping[str, str | None],
        amount: int,
        kin_canonical: str,
        friend_canonical: str,
    ) -> dict[str, str]:
        """The entities an extractor can find in these answers, at most four, in the
        archetype's order of importance."""
        text = "\n".join(a for a in answers.values() if a)
        out: dict[str, str] = {}
        for spec in arch.entities:
            if len(out) == 4:
                break
            if spec.slot is not None:
                if spec.slot not in used:
                    continue
                if spec.slot == "amount":
                    value = str(amount)
                elif spec.slot == "kin":
                    value = kin_canonical
                elif spec.slot == "friend":
                    value = friend_canonical
                else:
                    value = slots[spec.slot]
                if spec.label == EntityLabel.EMPLOYER and any(
                    m in value for m in self.bank.generic_employer
                ):
                    continue
                out[spec.label] = value
            elif spec.literal is not None:
                if spec.label == EntityLabel.PURPOSE:
                    if arch.purpose_cues and not any(c in text for c in arch.purpose_cues):
                        continue
                elif spec.literal not in text:
                    continue
                out[spec.label] = spec.literal
        return out


def generate(
    n: int,
    seed: int = 0,
    mix: Mapping[str, float] | None = None,
    *,
    bank: Bank | None = None,
) -> Iterator[dict[str, Any]]:
    """``n`` synthetic personas, deterministic for ``seed``.

    ``mix`` maps archetype names to relative weights and replaces the default mix
    (:func:`default_mix`) entirely: archetypes it leaves out are not drawn. Account ids
    are unique within one call (they encode the index).
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    bank = bank or load_bank()
    gen = _Generator(bank, seed, bank.mix if mix is None else mix)
    for index in range(n):
        yield gen.persona(index)


def archetypes() -> Sequence[str]:
    """Names of the archetypes of the shipped phrase bank."""
    return tuple(load_bank().archetypes)
