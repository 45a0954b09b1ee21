"""The accounts' network: one account's surroundings drawn as a graph (the accounts it
shares a phone, card, ID number, person or employer with, their bands and dispositions)
and the largest connected groups, where a node held by many unrelated accounts is a mule
hub. Pages and JSON API share one view model per screen (:class:`NetworkOut`,
:class:`GroupsOut`), built from :mod:`bot.store.links`.

Supervisors' view (``view_monitor``). Numbers are always masked: the links hold only a
keyed hash and the masked form, so not even a reveal could show them here. Node ids are
opaque (a digest of the node's kind and key), never the link key itself.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlmodel import Session

from bot.store import links
from bot.store.models import AccountRow
from bot.web import i18n
from bot.web.audit import audit
from bot.web.deps import DB, Viewer, require
from bot.web.errors import refusals
from bot.web.i18n import N_
from bot.web.labels import LABELS, label
from bot.web.pages import locale_of, page_gettext, render
from bot.web.params import DbId
from bot.web.roles import Permission
from bot.web.snapshots import Snapshots

router = APIRouter()
MAY_VIEW_NETWORK = require(Permission.VIEW_MONITOR)
#: Accounts drawn around one account at most (a hub's others are counted, not drawn).
MAX_ACCOUNTS = 60
#: Node kinds as the pages name them (English message ids, translated where shown).
KIND_LABELS = {
    "phone": N_("Phone"), "card": N_("Card"), "id_number": N_("ID number"),
    "person": N_("Person"), "employer": N_("Employer"),
}  # fmt: skip
#: An account no call has scored yet (its band key in a group's counts).
NO_BAND = N_("Not scored")
NO_ACCOUNT = N_("no such account")


class AccountNodeOut(BaseModel):
    id: str = Field(description="node id: a<account pk>")
    pk: int
    account_id: str = Field(description="masked")
    name: str
    band: str | None = None
    disposition: str | None = None
    calls: int = 0
    hops: int = Field(0, description="shared nodes away from the centre")


class EntityNodeOut(BaseModel):
    id: str = Field(description="opaque node id")
    kind: str = Field(description="phone | card | id_number | person | employer")
    shown: str = Field(description="numbers masked; names as stored")
    accounts: int = Field(description="accounts holding it in the whole database")


class EdgeOut(BaseModel):
    account: str
    entity: str
    origin: str = Field(description="holder | counterparty | said (named in a call)")


class NetworkOut(BaseModel):
    centre: str
    accounts: list[AccountNodeOut]
    entities: list[EntityNodeOut]
    edges: list[EdgeOut]
    truncated: int = Field(0, description="accounts reached but not drawn")
    group_size: int = Field(description="accounts in the centre's whole connected group")


class HubOut(BaseModel):
    kind: str
    shown: str
    accounts: int


class GroupOut(BaseModel):
    rank: int
    accounts: int
    shared: int = Field(description="nodes two of its accounts or more share")
    hubs: list[HubOut]
    bands: dict[str, int]
    members: list[AccountNodeOut]


class GroupsOut(BaseModel):
    groups: list[GroupOut]
    stop_names: list[str] = Field(description="names ignored as no real counterparty")


def entity_id(kind: str, link_key: str) -> str:
    return "e" + hashlib.sha256(f"{kind}\0{link_key}".encode()).hexdigest()[:12]


def _account_out(n: links.AccountNode) -> AccountNodeOut:
    return AccountNodeOut(
        id=f"a{n.pk}", pk=n.pk, account_id=n.account_id, name=n.name, band=n.band,
        disposition=n.disposition, calls=n.calls, hops=n.depth,
    )  # fmt: skip


def network_view(net: links.Network, group_size: int) -> NetworkOut:
    return NetworkOut(
        centre=f"a{net.centre}",
        accounts=[_account_out(a) for a in net.accounts],
        entities=[
            EntityNodeOut(
                id=entity_id(e.kind, e.link_key), kind=e.kind, shown=e.shown, accounts=e.accounts
            )
            for e in net.entities
        ],
        edges=[
            EdgeOut(
                account=f"a{e.account_pk}", entity=entity_id(e.kind, e.link_key), origin=e.origin
            )
            for e in net.edges
        ],
        truncated=net.truncated,
        group_size=group_size,
    )


def groups_view(found: list[links.Group]) -> GroupsOut:
    return GroupsOut(
        groups=[
            GroupOut(
                rank=g.rank, accounts=g.accounts, shared=g.shared,
                hubs=[HubOut(kind=h.kind, shown=h.shown, accounts=h.accounts) for h in g.hubs],
                bands=g.bands, members=[_account_out(m) for m in g.members],
            )
            for g in found
        ],
        stop_names=sorted(links.STOP_NAMES),
    )  # fmt: skip


class NoAccount(LookupError):
    pass


def _network(session: Session, who: Viewer, account_pk: int, via: str) -> NetworkOut:
    if session.get(AccountRow, account_pk) is None:
        raise NoAccount(account_pk)
    net = links.neighbourhood(session, account_pk, max_accounts=MAX_ACCOUNTS)
    view = network_view(net, len(links.group_of(session, account_pk)))
    audit(
        session, who.username, "network_viewed", "account", account_pk,
        accounts=len(view.accounts), via=via,
    )  # fmt: skip
    return view


def _graph_labels(locale: str) -> dict[str, Any]:
    """The labels the graph's script shows in its tooltips (node kinds, bands,
    dispositions), in the page's language: the script gets values, not labels."""
    speak = i18n.translations(locale).gettext
    return {
        "kinds_shown": {kind: speak(text) for kind, text in KIND_LABELS.items()},
        "bands_shown": {band: label("band", band, speak) for band in LABELS["band"]}
        | {"none": speak(NO_BAND)},
        "dispositions_shown": {d: label("disposition", d, speak) for d in LABELS["disposition"]},
    }


LIMIT = Query(20, ge=1, le=200, description="groups to list")


def _groups(request: Request, session: Session, limit: int) -> GroupsOut:
    """The group list. Computing it reads every shared link (about a second at 565,000
    links), and during a live campaign every connected call adds links: so after new
    links the list computed before them is served (at most ``links.GROUPS_MAX_AGE_S``
    old) while one background thread computes the new one."""
    cache: Snapshots[int, list[links.Group]] = request.app.state.groups_cache
    found = cache.get(
        session, limit, _groups_version(session),
        lambda s: links.groups(s, limit, part=links.recent_partition(s)),
        current=_groups_version,
    )  # fmt: skip
    return groups_view(found)


def _groups_version(session: Session) -> tuple[int, int]:
    """The links' newest id (a new link shows at once) and the age step: a delete alone
    moves no id, so the list is also recomputed every ``links.GROUPS_MAX_AGE_S``."""
    return links.links_version(session), int(time.monotonic() // links.GROUPS_MAX_AGE_S)


@router.get("/network", response_class=HTMLResponse, include_in_schema=False)
def groups_page(
    request: Request,
    limit: int = LIMIT,
    who: Viewer = Depends(MAY_VIEW_NETWORK),
    session: Session = DB,
) -> HTMLResponse:
    view = _groups(request, session, limit)
    return render(request, "network.html", who, view=view, kinds=KIND_LABELS, no_band=NO_BAND)


@router.get("/accounts/{account_pk}/network", response_class=HTMLResponse, include_in_schema=False)
def account_network_page(
    request: Request,
    account_pk: DbId,
    who: Viewer = Depends(MAY_VIEW_NETWORK),
    session: Session = DB,
) -> HTMLResponse:
    try:
        view = _network(session, who, account_pk, "page")
    except NoAccount:
        speak = page_gettext(request)
        return render(request, "error.html", who, 404, status=404, message=speak(NO_ACCOUNT))
    centre = next(a for a in view.accounts if a.id == view.centre)
    return render(
        request, "account_network.html", who, view=view, centre=centre, kinds=KIND_LABELS,
        data=view.model_dump_json(), **_graph_labels(locale_of(request)),
    )  # fmt: skip


@router.get(
    "/api/v1/accounts/{account_pk}/network",
    response_model=NetworkOut,
    tags=["network"],
    responses=refusals(404),
)
def api_account_network(
    account_pk: DbId,
    who: Viewer = Depends(MAY_VIEW_NETWORK),
    session: Session = DB,
) -> NetworkOut:
    """One account's network: the accounts within two shared nodes of it (at most 60,
    nearest first), the nodes tying them (numbers masked) and who holds which."""
    try:
        return _network(session, who, account_pk, "api")
    except NoAccount:
        raise HTTPException(404, "no such account") from None


@router.get("/api/v1/network/groups", response_model=GroupsOut, tags=["network"])
def api_groups(
    request: Request,
    limit: int = LIMIT,
    _who: Viewer = Depends(MAY_VIEW_NETWORK),
    session: Session = DB,
) -> GroupsOut:
    """The largest connected groups of accounts, most accounts first, each with its
    most shared nodes (hubs), its accounts' bands and its most linked members."""
    return _groups(request, session, limit)
