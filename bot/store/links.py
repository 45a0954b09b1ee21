"""The accounts' network: what ties accounts to each other, stored as rows of
``entity_link`` (one per account and thing it is tied to) and read back as graphs.

What links (a *node* is ``(kind, link_key)``; two accounts holding the same node are
linked through it):

* the account's own data: its phone, ID number and card (the account id when it is a
  card number), the holder's name, and the flagged transaction's counterparty;
* what callees name in calls: phones, cards, ID numbers, people and employers (negated
  mentions, "我没有借给朋友", are left out).

Numbers are stored masked everywhere else (docs/pii-storage.md), and a masked number
cannot link (two different cards share ``**** **** **** 3456``). So a number's
``link_key`` is a keyed hash, HMAC-SHA256 of the normalised full number under a key
derived from the PII key (:class:`LinkKey`), computed when the entity is recorded; the
number itself is never stored here, and ``shown`` holds its masked form. Without a PII
key, numbers are not linked at all (an unkeyed hash of an 11-digit phone is reversed by
trying them all). Names are not masked in this system; they link on their normalised
text (NFKC, no spaces).

Reading: :func:`groups` finds the connected groups of the bipartite graph account—node
(keys held by two accounts or more, then union-find: linear in the links), ranked by
how many accounts they hold; :func:`neighbourhood` draws one account's surroundings
(breadth first, two account hops, capped); :func:`group_of` is one account's whole group
by a bounded recursive query (``WITH RECURSIVE``, on both engines), or for a large one
from the cached partition the group list is computed from. Common words that are no
real counterparty (:data:`STOP_NAMES`) are ignored by every read.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import sqlalchemy as sa
from cachetools import TTLCache
from sqlalchemy.engine import Connection
from sqlmodel import Session

from bot.core.masking import SPOKEN_DIGITS, mask_card, mask_id, mask_phone, mask_text
from bot.store.models import AccountRow, CallRow, EntityLinkRow, utcnow
from bot.store.pii_crypto import PiiSettings, decode_key

LINKS = EntityLinkRow.__table__  # type: ignore[attr-defined]
NUMBER_KINDS: Final = frozenset({"phone", "card", "id_number"})
NAME_KINDS: Final = frozenset({"person", "employer"})
KINDS: Final = NUMBER_KINDS | NAME_KINDS
#: Entity labels (bot.core.vocab.EntityLabel) that link, and their node kind.
LABEL_KINDS: Final = {
    "phone": "phone",
    "card_number": "card",
    "id_number": "id_number",
    "person": "person",
    "employer": "employer",
}
#: Names that are no one in particular: a callee's "朋友" or "公司" is not a counterparty
#: two holders share. Ignored by every read (so changing the list needs no rebuild).
STOP_NAMES: Final = frozenset(
    {
        "朋友", "公司", "单位", "同事", "老板", "领导", "家人", "亲戚", "同学", "客户",
        "网友", "中介", "商家", "银行", "本人", "自己", "我", "他", "她", "他们", "别人",
        "老公", "老婆", "爸爸", "妈妈", "父亲", "母亲", "儿子", "女儿", "不知道", "不认识",
    }
)  # fmt: skip
#: Service numbers (400/800, short codes) are everybody's counterparty: not linked.
_SERVICE_NUMBER = re.compile(r"^(?:400|800)\d{7}$")
_COUNTRY = re.compile(r"^(?:0086|86)(?=1[3-9]\d{9}$)")
MAX_KEY = 100


# -- keys and normalisation -------------------------------------------------------------


class LinkKey:
    """The HMAC key that turns a full number into its link key.

    Derived from the PII key (``HMAC-SHA256(pii key, "callbot-entity-link-v1")``), so a
    deployment has one secret to keep; a stolen database without it cannot test a guessed
    number against the links. Rotating the PII key changes this key too: run
    ``bot db link-entities --rebuild`` afterwards (it re-keys from the account rows and
    the sealed originals, which the retired keys still open).
    """

    def __init__(self, pii_key: bytes) -> None:
        self._secret = hmac.new(pii_key, b"callbot-entity-link-v1", hashlib.sha256).digest()
        self.key_id = hashlib.sha256(b"callbot-link-key-id\0" + self._secret).hexdigest()[:16]

    @classmethod
    def from_settings(cls, cfg: PiiSettings) -> LinkKey | None:
        current = cfg.key.get_secret_value()
        return cls(decode_key(current)) if current else None

    def digest(self, kind: str, normalised: str) -> str:
        return hmac.new(self._secret, f"{kind}\0{normalised}".encode(), hashlib.sha256).hexdigest()


def process_link_key() -> LinkKey | None:
    """The link key of the process settings (None without a PII key)."""
    from bot.settings import get_settings

    return LinkKey.from_settings(get_settings().pii)


def normalise(kind: str, text: str | None) -> str | None:
    """The form two mentions of one thing share, or None when it cannot link: a number
    as its digits (Chinese numerals read as digits, a mobile without +86), only when it
    is whole (a phone of 7+ digits and no service number, a card of 13-19, an ID of 18);
    a name in NFKC without spaces, two characters at least."""
    if not text:
        return None
    if kind in NAME_KINDS:
        name = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))
        return name[:MAX_KEY] if len(name) >= 2 else None
    if "*" in text:
        return None  # masked: the digits are gone
    raw = unicodedata.normalize("NFKC", text)
    digits = "".join(SPOKEN_DIGITS.get(c, c) for c in raw)
    digits = "".join(c for c in digits.upper() if c.isdigit() or c == "X")
    if kind == "phone":
        digits = _COUNTRY.sub("", digits)
        ok = 7 <= len(digits) <= 12 and "X" not in digits and not _SERVICE_NUMBER.match(digits)
    elif kind == "card":
        ok = 13 <= len(digits) <= 19 and "X" not in digits
    elif kind == "id_number":
        ok = len(digits) == 18 and "X" not in digits[:-1]
    else:
        ok = False
    return digits if ok else None


_SHOW = {"phone": mask_phone, "card": mask_card, "id_number": mask_id}


def node(kind: str, text: str | None, key: LinkKey | None) -> tuple[str, str, str | None] | None:
    """``(link_key, shown, key_id)`` of a mention, or None when it does not link."""
    value = normalise(kind, text)
    if value is None:
        return None
    if kind in NAME_KINDS:
        return value, value, None
    if key is None:
        return None
    return key.digest(kind, value), _SHOW[kind](value), key.key_id


# -- writing ----------------------------------------------------------------------------


def _row(
    account_pk: int,
    kind: str,
    origin: str,
    text: str | None,
    key: LinkKey | None,
    call_id: int | None = None,
    entity_id: int | None = None,
) -> dict[str, Any] | None:
    found = node(kind, text, key)
    if found is None:
        return None
    link_key, shown, key_id = found
    return {
        "account_pk": account_pk, "call_id": call_id, "entity_id": entity_id, "kind": kind,
        "origin": origin, "link_key": link_key, "shown": shown[:MAX_KEY], "key_id": key_id,
        "created_at": utcnow(),
    }  # fmt: skip


def _unique(rows: Iterable[dict[str, Any] | None]) -> list[dict[str, Any]]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for r in rows:
        if r is None:
            continue
        ident = (r["kind"], r["link_key"], r["origin"], r["call_id"])
        if ident not in seen:
            seen.add(ident)
            out.append(r)
    return out


def account_rows(account: AccountRow, key: LinkKey | None) -> list[dict[str, Any]]:
    """The links of an account's own data."""
    assert account.id is not None
    pk = account.id
    return _unique(
        [
            _row(pk, "phone", "holder", account.phone_e164 or account.phone, key),
            _row(pk, "id_number", "holder", account.id_number, key),
            _row(pk, "card", "holder", account.account_id, key),
            _row(pk, "person", "holder", account.name, key),
            _row(pk, "person", "counterparty", account.txn_counterparty, key),
        ]
    )


@dataclass(frozen=True)
class Mention:
    """An entity as the callee said it (unmasked), and its stored row's id."""

    label: str
    value: str
    text: str
    negated: bool = False
    entity_id: int | None = None


def mention_rows(
    account_pk: int, call_id: int, mentions: Iterable[Mention], key: LinkKey | None
) -> list[dict[str, Any]]:
    """The links of what a call's callee named."""
    rows = []
    for m in mentions:
        kind = LABEL_KINDS.get(m.label)
        if kind is None or m.negated:
            continue
        found = _row(account_pk, kind, "said", m.value or m.text, key, call_id, m.entity_id)
        if found is None and m.text != m.value:
            found = _row(account_pk, kind, "said", m.text, key, call_id, m.entity_id)
        rows.append(found)
    return _unique(rows)


def refresh_account(session: Session | Connection, account: AccountRow, key: LinkKey | None) -> int:
    """Replace the links of the account's own data (it may have been re-imported)."""
    session.execute(
        sa.delete(LINKS).where(LINKS.c.account_pk == account.id, LINKS.c.call_id.is_(None))
    )
    rows = account_rows(account, key)
    if rows:
        session.execute(sa.insert(LINKS), rows)
    return len(rows)


def record_call_links(
    session: Session,
    account: AccountRow,
    call_id: int,
    result: Any,
    entity_rows: Sequence[Any],
    key: LinkKey | None = None,
) -> int:
    """Links of a call being recorded (``bot.campaign.recorder.record_result``), in its
    transaction: the account's own data refreshed, and every entity the callee named,
    hashed from the unmasked value in ``result`` before anything was masked.
    ``entity_rows`` are the call's flushed ``extracted_entity`` rows, in the order
    :attr:`result` lists its entities. ``key``: default the process settings' one."""
    key = key if key is not None else process_link_key()
    said = [e for t in result.record.turns for e in (t.nlu.entities if t.nlu is not None else ())]
    mentions = []
    for i, e in enumerate(said):
        row_id = entity_rows[i].id if i < len(entity_rows) else None
        label = getattr(e.label, "value", e.label)
        mentions.append(Mention(str(label), e.value, e.text, e.negated, row_id))
    assert account.id is not None
    n = refresh_account(session, account, key)
    rows = mention_rows(account.id, call_id, mentions, key)
    if rows:
        session.execute(sa.insert(LINKS), rows)
    return n + len(rows)


# -- reading ----------------------------------------------------------------------------


def _linking(table: Any = LINKS) -> Any:
    """Rows that may link: not a stop-list name, and not a holder's name that only other
    holders share (two holders called 张伟 are not tied by that; a callee or a flagged
    transaction naming 张伟 ties every 张伟 holder to it)."""
    return sa.and_(
        _not_stop_name(table),
        sa.or_(table.c.kind != "person", table.c.origin != "holder", _named_elsewhere(table.c)),
    )


def _named_elsewhere(node: Any) -> Any:
    """Whether a call or a flagged transaction (not a holder's own data) names the node
    ``node.kind``/``node.link_key`` (columns of a table or subquery)."""
    other = LINKS.alias("other_mention")
    return (
        sa.select(other.c.id)
        .where(
            other.c.kind == node.kind,
            other.c.link_key == node.link_key,
            other.c.origin != "holder",
        )
        .exists()
    )


def _not_stop_name(table: Any) -> Any:
    return sa.not_(
        sa.and_(table.c.kind.in_(sorted(NAME_KINDS)), table.c.link_key.in_(sorted(STOP_NAMES)))
    )


@dataclass(frozen=True)
class AccountNode:
    pk: int
    account_id: str  # masked
    name: str
    band: str | None
    disposition: str | None
    calls: int
    depth: int = 0


@dataclass(frozen=True)
class EntityNode:
    kind: str
    link_key: str
    shown: str
    #: How many accounts hold it in the whole database (may exceed those drawn).
    accounts: int


@dataclass(frozen=True)
class Edge:
    account_pk: int
    kind: str
    link_key: str
    origin: str


@dataclass
class Network:
    centre: int
    accounts: list[AccountNode] = field(default_factory=list)
    entities: list[EntityNode] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    #: Accounts reached but not drawn (the cap).
    truncated: int = 0


def latest_calls(
    session: Session, pks: Iterable[int]
) -> dict[int, tuple[str | None, str | None, int]]:
    """Each account's last finished call's band and disposition, and its number of calls."""
    pks = sorted(set(pks))
    if not pks:
        return {}
    c = CallRow.__table__  # type: ignore[attr-defined]
    out: dict[int, tuple[str | None, str | None, int]] = {}
    for i in range(0, len(pks), 500):
        chunk = pks[i : i + 500]
        per = (
            sa.select(c.c.account_pk, sa.func.max(c.c.id).label("last"), sa.func.count().label("n"))
            .where(c.c.account_pk.in_(chunk), c.c.outcome.is_not(None))
            .group_by(c.c.account_pk)
            .subquery()
        )
        rows = session.execute(
            sa.select(per.c.account_pk, c.c.risk_band, c.c.disposition, per.c.n).join(
                c, c.c.id == per.c.last
            )
        ).all()
        for r in rows:
            out[r.account_pk] = (r.risk_band, r.disposition, int(r.n))
    return out


def account_nodes(session: Session, depth: dict[int, int]) -> list[AccountNode]:
    a = AccountRow.__table__  # type: ignore[attr-defined]
    calls = latest_calls(session, depth)
    rows: list[Any] = []
    pks = sorted(depth)
    for i in range(0, len(pks), 500):
        rows += session.execute(
            sa.select(a.c.id, a.c.account_id, a.c.name).where(a.c.id.in_(pks[i : i + 500]))
        ).all()
    nodes = [
        AccountNode(
            r.id, mask_text(r.account_id), r.name, *calls.get(r.id, (None, None, 0)),
            depth=depth[r.id],
        )
        for r in rows
    ]  # fmt: skip
    return sorted(nodes, key=lambda n: (n.depth, n.pk))


def _links_of(session: Session, pks: Sequence[int]) -> list[Any]:
    out: list[Any] = []
    for i in range(0, len(pks), 500):
        out += session.execute(
            sa.select(
                LINKS.c.account_pk, LINKS.c.kind, LINKS.c.link_key, LINKS.c.shown, LINKS.c.origin
            ).where(LINKS.c.account_pk.in_(pks[i : i + 500]), _linking())
        ).all()
    return out


def _by_kind(keys: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """Node keys grouped by kind, in chunks of 500 (one ``IN`` list each)."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for kind, link_key in sorted(set(keys)):
        grouped[kind].append(link_key)
    return [
        (kind, link_keys[i : i + 500])
        for kind, link_keys in sorted(grouped.items())
        for i in range(0, len(link_keys), 500)
    ]


def _holders(
    session: Session, keys: set[tuple[str, str]], limit: int
) -> dict[tuple[str, str], list[int]]:
    """Accounts holding each node (at most ``limit`` each, lowest ids first)."""
    out: dict[tuple[str, str], list[int]] = defaultdict(list)
    for kind, link_keys in _by_kind(keys):
        held = (
            sa.select(LINKS.c.link_key, LINKS.c.account_pk)
            .where(LINKS.c.kind == kind, LINKS.c.link_key.in_(link_keys))
            .distinct()
            .subquery()
        )
        ranked = sa.select(
            held.c.link_key,
            held.c.account_pk,
            sa.func.row_number()
            .over(partition_by=held.c.link_key, order_by=held.c.account_pk)
            .label("n"),
        ).subquery()
        rows = session.execute(
            sa.select(ranked.c.link_key, ranked.c.account_pk)
            .where(ranked.c.n <= limit)
            .order_by(ranked.c.link_key, ranked.c.account_pk)
        ).all()
        for r in rows:
            out[(kind, r.link_key)].append(r.account_pk)
    return out


def _counts(session: Session, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """How many accounts hold each node."""
    out: dict[tuple[str, str], int] = {}
    for kind, link_keys in _by_kind(keys):
        rows = session.execute(
            sa.select(LINKS.c.link_key, sa.func.count(sa.distinct(LINKS.c.account_pk)))
            .where(LINKS.c.kind == kind, LINKS.c.link_key.in_(link_keys))
            .group_by(LINKS.c.link_key)
        ).all()
        out.update({(kind, r[0]): int(r[1]) for r in rows})
    return out


def neighbourhood(
    session: Session, account_pk: int, hops: int = 2, max_accounts: int = 60
) -> Network:
    """The account, the accounts within ``hops`` shared nodes of it (nearest first, at
    most ``max_accounts``), and the nodes tying them: all of the centre's, and every
    other node two drawn accounts share. A hub held by more accounts than fit is drawn
    once with its true count (:attr:`EntityNode.accounts`)."""
    depth = {account_pk: 0}
    frontier = [account_pk]
    truncated = 0
    for d in range(1, hops + 1):
        keys = {(r.kind, r.link_key) for r in _links_of(session, frontier)}
        room = max_accounts - len(depth)
        reached: list[int] = []
        for held in _holders(session, keys, max_accounts + 1).values():
            reached += [pk for pk in held if pk not in depth and pk not in reached]
        if len(reached) > room:
            truncated += len(reached) - max(room, 0)
            reached = sorted(reached)[: max(room, 0)]
        for pk in reached:
            depth[pk] = d
        frontier = reached
        if not frontier:
            break
    links = _links_of(session, sorted(depth))
    holders: dict[tuple[str, str], set[int]] = defaultdict(set)
    shown: dict[tuple[str, str], str] = {}
    for r in links:
        holders[(r.kind, r.link_key)].add(r.account_pk)
        shown.setdefault((r.kind, r.link_key), r.shown)
    drawn = {k for k, pks in holders.items() if len(pks) >= 2 or account_pk in pks}
    counts = _counts(session, {k for k in drawn if len(holders[k]) >= 2 or k[0] in NAME_KINDS})
    entities = [
        EntityNode(k[0], k[1], shown[k], counts.get(k, len(holders[k]))) for k in sorted(drawn)
    ]
    seen: set[tuple[int, str, str]] = set()
    edges = []
    for r in links:
        ident = (r.account_pk, r.kind, r.link_key)
        if (r.kind, r.link_key) in drawn and ident not in seen:
            seen.add(ident)
            edges.append(Edge(r.account_pk, r.kind, r.link_key, r.origin))
    return Network(account_pk, account_nodes(session, depth), entities, edges, truncated)


#: Up to this many accounts an account's group is found by the recursive query; a
#: larger group (a mule hub's) is read from the partition the group list is computed
#: from (:func:`recent_partition`): the recursion costs about 0.1 ms per link reached
#: (2.7 s for a group of 24,000 accounts on PostgreSQL at 100,000 accounts).
GROUP_RECURSION_MAX = 1000


def group_of(session: Session, account_pk: int) -> set[int]:
    """Every account connected to ``account_pk`` through shared nodes: by the bounded
    recursive query (:func:`reach`) for a group of at most
    :data:`GROUP_RECURSION_MAX` accounts, else from the partition of every shared link
    (the same graph, kept while the links are unchanged)."""
    found = reach(session, account_pk, GROUP_RECURSION_MAX + 1)
    if len(found) <= GROUP_RECURSION_MAX:
        return found
    part = recent_partition(session)
    index = part.index.get(account_pk)
    return set(part.components[index][0]) if index is not None else found


def reach(session: Session, account_pk: int, limit: int | None = None) -> set[int]:
    """The accounts connected to ``account_pk`` through shared nodes (at most ``limit``:
    the recursion stops there), by one recursive query over the bipartite graph (each
    node is expanded once: ``UNION`` drops a row already reached, so the work is
    proportional to the group's links)."""
    l1 = LINKS.alias("l1")
    # A row of ``reach`` is a node: an account (kind "account", its pk in ``pk``) or a
    # shared thing (its kind and link key, ``pk`` 0).
    seed = sa.select(
        sa.literal("account").label("kind"),
        sa.literal("").label("key"),
        sa.literal(account_pk).label("pk"),
    ).cte("reach", recursive=True)
    from_account = sa.and_(seed.c.kind == "account", l1.c.account_pk == seed.c.pk)
    from_node = sa.and_(
        seed.c.kind != "account", l1.c.kind == seed.c.kind, l1.c.link_key == seed.c.key
    )
    is_account = seed.c.kind == "account"
    step = (
        sa.select(
            sa.case((is_account, l1.c.kind), else_=sa.literal("account")),
            sa.case((is_account, l1.c.link_key), else_=sa.literal("")),
            sa.case((is_account, sa.literal(0)), else_=l1.c.account_pk),
        )
        .select_from(seed.join(l1, sa.or_(from_account, from_node)))
        .where(_linking(l1))
    )
    reached = seed.union(step)
    stmt = sa.select(reached.c.pk).where(reached.c.kind == "account")
    if limit is not None:
        stmt = stmt.limit(limit)  # both engines evaluate a recursive CTE lazily
    return {int(k) for k in session.execute(stmt).scalars()}


@dataclass(frozen=True)
class Hub:
    kind: str
    shown: str
    accounts: int


@dataclass(frozen=True)
class Group:
    rank: int
    accounts: int
    #: Nodes two of its accounts or more share.
    shared: int
    hubs: list[Hub]
    bands: dict[str, int]
    members: list[AccountNode]


def _components(
    pairs: Iterable[tuple[str, str, int]],
) -> list[tuple[set[int], set[tuple[str, str]]]]:
    """Connected components of account—node pairs (union-find on the accounts)."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    by_node: dict[tuple[str, str], list[int]] = defaultdict(list)
    for kind, link_key, pk in pairs:
        parent.setdefault(pk, pk)
        by_node[(kind, link_key)].append(pk)
    for pks in by_node.values():
        root = find(pks[0])
        for pk in pks[1:]:
            other = find(pk)
            if other != root:
                parent[other] = root
    members: dict[int, set[int]] = defaultdict(set)
    for pk in parent:
        members[find(pk)].add(pk)
    nodes: dict[int, set[tuple[str, str]]] = defaultdict(set)
    for k, pks in by_node.items():
        nodes[find(pks[0])].add(k)
    return [(members[r], nodes[r]) for r in members]


@dataclass(frozen=True)
class Partition:
    """Every connected group of two accounts or more, largest first (accounts, shared
    nodes), who holds each shared node, and each grouped account's group."""

    components: list[tuple[set[int], set[tuple[str, str]]]]
    holders: dict[tuple[str, str], set[int]]
    index: dict[int, int]


def partition(session: Session) -> Partition:
    """The groups of every shared link. Only nodes held by two accounts or more can join
    accounts, so only those are read: the work is linear in the shared links. The nodes
    are found by one grouped query the engines can answer from the ``(kind, link_key,
    account_pk)`` index alone: held by two accounts (``min < max``, not a distinct
    count); then, for a person, named by someone other than a holder (what
    :func:`_linking` asks row by row, asked once per shared node here)."""
    held = (
        sa.select(LINKS.c.kind, LINKS.c.link_key)
        .where(_not_stop_name(LINKS))
        .group_by(LINKS.c.kind, LINKS.c.link_key)
        .having(sa.func.min(LINKS.c.account_pk) < sa.func.max(LINKS.c.account_pk))
        .subquery()
    )
    shared = (
        sa.select(held).where(sa.or_(held.c.kind != "person", _named_elsewhere(held.c))).subquery()
    )
    pairs = session.execute(
        sa.select(LINKS.c.kind, LINKS.c.link_key, LINKS.c.account_pk)
        .join(shared, sa.and_(shared.c.kind == LINKS.c.kind, shared.c.link_key == LINKS.c.link_key))
        .distinct()
    ).all()
    comps = sorted(_components((p.kind, p.link_key, p.account_pk) for p in pairs),
                   key=lambda c: (-len(c[0]), min(c[0])))  # fmt: skip
    holders: dict[tuple[str, str], set[int]] = defaultdict(set)
    for p in pairs:
        holders[(p.kind, p.link_key)].add(p.account_pk)
    index = {pk: i for i, (accounts, _) in enumerate(comps) for pk in accounts}
    return Partition(comps, dict(holders), index)


def groups(
    session: Session, limit: int = 20, members: int = 12, part: Partition | None = None
) -> list[Group]:
    """The largest connected groups (two accounts or more), most accounts first; each
    with its most shared nodes (the hubs), its accounts' bands and its first members
    (most linked first). ``part``: the :func:`partition` to use (default: computed)."""
    part = part if part is not None else partition(session)
    comps, holders = part.components[:limit], part.holders
    wanted: dict[int, int] = {}
    tops: list[list[int]] = []
    for accounts, nodes in comps:
        degree = Counter(pk for k in nodes for pk in holders[k])
        top = sorted(accounts, key=lambda pk: (-degree[pk], pk))[:members]
        tops.append(top)
        wanted.update({pk: 0 for pk in top})
    described = {n.pk: n for n in account_nodes(session, wanted)}
    bands = latest_calls(session, [pk for accounts, _ in comps for pk in accounts])
    shown = _shown(session, {k for _, nodes in comps for k in nodes})
    out = []
    for rank, ((accounts, nodes), top) in enumerate(zip(comps, tops, strict=True), start=1):
        hubs = sorted(nodes, key=lambda k: (-len(holders[k]), k))[:3]
        band_count = Counter(bands.get(pk, (None, None, 0))[0] or "none" for pk in accounts)
        out.append(
            Group(
                rank, len(accounts), len(nodes),
                [Hub(k[0], shown.get(k, ""), len(holders[k])) for k in hubs],
                dict(sorted(band_count.items())), [described[pk] for pk in top if pk in described],
            )
        )  # fmt: skip
    return out


#: How long the supervisor's group list (kept by the dashboard, ``app.state.groups_cache``)
#: and the partition it is computed from may be served from memory: computing them reads
#: every shared link (1-3 s at 100,000 accounts and 565,000 links on 2 cores).
GROUPS_MAX_AGE_S = 60.0
_partitions: TTLCache[str, tuple[int, Partition]] = TTLCache(maxsize=4, ttl=GROUPS_MAX_AGE_S)
_recent_lock = threading.Lock()


def links_version(session: Session) -> int:
    """The links' newest id (one index lookup): every write inserts links (a refresh or
    a rebuild deletes and inserts), so it changes with them. A count would also see a
    delete alone, but costs a scan of every link (0.1 s at 565,000 on PostgreSQL); such
    a change shows when the entry expires (:data:`GROUPS_MAX_AGE_S`)."""
    return int(session.execute(sa.select(sa.func.max(LINKS.c.id))).scalar_one() or 0)


def recent_partition(session: Session, version: int | None = None) -> Partition:
    """:func:`partition`, kept for :data:`GROUPS_MAX_AGE_S` while the links are unchanged."""
    key = str(session.get_bind().engine.url)
    version = version if version is not None else links_version(session)
    with _recent_lock:
        found = _partitions.get(key)
    if found is not None and found[0] == version:
        return found[1]
    computed = partition(session)
    with _recent_lock:
        _partitions[key] = (version, computed)
    return computed


def _shown(session: Session, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """What each node shows (its masked number or its name)."""
    out: dict[tuple[str, str], str] = {}
    for kind, link_keys in _by_kind(keys):
        rows = session.execute(
            sa.select(LINKS.c.link_key, sa.func.min(LINKS.c.shown))
            .where(LINKS.c.kind == kind, LINKS.c.link_key.in_(link_keys))
            .group_by(LINKS.c.link_key)
        ).all()
        out.update({(kind, r[0]): r[1] for r in rows})
    return out
