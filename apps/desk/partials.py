"""The desk's HTML: the page at /desk/ and every piece the desk socket swaps into it.

The desk is server-rendered (docs/desk.md): what a viewer sees is read here through the same
selectors and serializers as the staff REST API (so the same visibility rules apply) and
rendered by Django templates with autoescaping. The browser swaps the pieces in with htmx;
nothing of customer or staff text is ever put together as HTML in the browser.

Pieces the socket sends carry `hx-swap-oob`; a ticket's pieces carry its id in theirs
(`t<id>-messages`), so a late piece of a ticket the page left finds nothing to replace.
"""

import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.dateparse import parse_datetime

from apps.chat.services import staff_display_name
from apps.core.api import ID_MAX
from apps.core.errors import NotFound
from apps.desk import selectors, services
from apps.desk.api import (
    ActivitySerializer,
    DeskMessageSerializer,
    NoteSerializer,
    TicketDetailSerializer,
    TicketSummarySerializer,
)
from apps.desk.models import DraftReply, InternalNote
from apps.pools import selectors as pool_selectors
from apps.pools import services as pool_services
from apps.pools.models import Pool
from apps.tickets.models import Ticket, TicketActivity

Status = Ticket.Status
STATUS_LABELS: dict[str, str] = dict(Status.choices)
OPEN_STATUSES = (Status.QUEUED.value, Status.ASSIGNED.value)
FILTERS = [
    ("open", "Open"),
    ("queued", "Queued"),
    ("assigned", "Assigned"),
    ("awaiting_customer", "Awaiting customer"),
    ("in_review", "In review"),
    ("resolved", "Resolved"),
    ("all", "All"),
]
QUEUE_LIMIT = 100  # rows per status in one queue view
_POOL_TAB = re.compile(r"^pool:([-a-zA-Z0-9_]{1,50})$")


# --- what the page shows ---------------------------------------------------------------------


@dataclass(frozen=True)
class DeskView:
    """Which queue, which filter and which ticket a desk shows (its address, and the socket's
    `view` frame)."""

    tab: str = "mine"
    filter: str = "open"
    ticket: int | None = None

    def url(self, **changes: Any) -> str:
        """The desk's address for this view, with `changes` (say `ticket=None`)."""
        view = replace(self, **changes)
        params: dict[str, Any] = {"tab": view.tab, "filter": view.filter}
        if view.ticket is not None:
            params["ticket"] = view.ticket
        return "/desk/?" + urlencode(params)

    @property
    def list_url(self) -> str:
        """The address of the view's queue with no ticket open."""
        return self.url(ticket=None)


def desk_view_parse(*, tab: Any, filter: Any, ticket: Any) -> DeskView:
    """A view from untrusted input (a query string, a frame): anything unknown is the default."""
    if not isinstance(tab, str) or not (tab in ("mine", "all") or _POOL_TAB.match(tab)):
        tab = "mine"
    if filter not in dict(FILTERS):
        filter = "open"
    if isinstance(ticket, str) and ticket.isdigit():
        ticket = int(ticket)
    if isinstance(ticket, bool) or not isinstance(ticket, int) or not 1 <= ticket <= ID_MAX:
        ticket = None
    return DeskView(tab=tab, filter=filter, ticket=ticket)


# --- data for the templates --------------------------------------------------------------------


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    return parse_datetime(value) if isinstance(value, str) else None


def _customer_name(ticket: dict[str, Any]) -> str:
    return (ticket.get("customer") or {}).get("name") or "Anonymous customer"


def _person(person: dict[str, Any] | None) -> str:
    if not person:
        return ""
    return str(person.get("name") or person.get("username") or "someone")


def _sla(ticket: dict[str, Any]) -> dict[str, Any]:
    """The SLA badge: answered (in time or late), breached, or a countdown the page ticks."""
    if ticket.get("first_response_at"):
        late = bool(ticket.get("sla_breached_at"))
        return {"state": "answered", "text": "Answered late" if late else "Answered", "late": late}
    if ticket.get("sla_breached_at"):
        return {"state": "breached", "text": "SLA breached"}
    if ticket.get("sla_due_at") and ticket.get("status") != Status.RESOLVED:
        return {"state": "due", "due": ticket["sla_due_at"], "text": ""}
    return {"state": "none", "text": ""}


def _summary(ticket: dict[str, Any]) -> dict[str, Any]:
    """A serialized ticket with what the templates show of it."""
    last = ticket.get("last_message")
    return {
        **ticket,
        "status_label": STATUS_LABELS.get(ticket["status"], ticket["status"]),
        "customer_name": _customer_name(ticket),
        "assignee_name": _person(ticket.get("assignee")),
        "sla": _sla(ticket),
        "last_sender": _sender_label(last["sender"], None, ticket) if last else "",
    }


def _sender_label(sender: str, author: str | None, ticket: dict[str, Any]) -> str:
    if sender == "customer":
        return _customer_name(ticket)
    if sender == "bot":
        return "Bot"
    return author or "Agent"


def _message(message: dict[str, Any], ticket: dict[str, Any]) -> dict[str, Any]:
    sender = message["sender"] if message["sender"] in ("customer", "bot", "agent") else "agent"
    return {
        **message,
        "sender": sender,
        "who": _sender_label(sender, message.get("author"), ticket),
        "created": _when(message.get("created_at")),
        "files": [
            {
                **file,
                "image": str(file.get("content_type", "")).startswith("image/"),
                "kb": math.ceil(int(file.get("size") or 0) / 1024),
            }
            for file in message.get("attachments", [])
        ],
    }


def _activity(item: dict[str, Any]) -> dict[str, Any]:
    given = item.get("data")
    data: dict[str, Any] = given if isinstance(given, dict) else {}
    parts: list[str] = []
    if data.get("from") or data.get("to"):
        parts.append(f"{data.get('from') or '?'} → {data.get('to') or '?'}")
    if data.get("pool") and not data.get("to"):
        parts.append(str(data["pool"]))
    if data.get("assignee"):
        parts.append(f"to {data['assignee']}")
    if data.get("reason"):
        parts.append(f"“{data['reason']}”")
    return {**item, "detail": " ".join(parts), "created": _when(item.get("created_at"))}


def _decision(decision: dict[str, Any]) -> dict[str, Any]:
    confidence = decision.get("confidence")
    latency = decision.get("latency_ms")
    return {
        **decision,
        "percent": round(confidence * 100) if isinstance(confidence, int | float) else None,
        "latency": round(latency) if isinstance(latency, int | float) else None,
        "created": _when(decision.get("created_at")),
    }


def _context(context: dict[str, Any] | None) -> dict[str, Any] | None:
    if context is None:
        return None

    def status(row: dict[str, Any]) -> str:
        return STATUS_LABELS.get(row.get("status") or "", row.get("status") or "")

    return {
        "earlier": [{**row, "status_label": status(row)} for row in context["earlier_tickets"]],
        "similar": [
            {
                **row,
                "extra": f"similarity {row['score']:.2f}"
                if isinstance(row.get("score"), int | float)
                else "",
            }
            for row in context["similar_tickets"]
        ],
        "canned": context["canned_replies"],
        "missing": context["missing"],
    }


# --- the overview: tabs and queues -------------------------------------------------------------


def desk_overview(*, user: Any) -> dict[str, Any]:
    """Who the viewer is, their presence and their queues' counts (what `GET desk/` answers)."""
    profile = pool_services.agent_profile_get(user=user)
    counts = pool_selectors.queue_counts(user=user)
    return {
        "user": {"id": user.pk, "username": user.get_username(), "name": staff_display_name(user)},
        "supervisor": pool_selectors.user_is_supervisor(user),
        "presence": profile.presence,
        "pools": counts["pools"],
        "mine": counts["mine"],
        "drafts_enabled": bool(settings.ANTHROPIC_API_KEY),
    }


def desk_tabs(*, overview: dict[str, Any], view: DeskView) -> list[dict[str, Any]]:
    """Mine, all pools (supervisors) and each pool of the viewer, with their counts."""
    tabs: list[dict[str, Any]] = [
        {"key": "mine", "label": "Mine", "count": f"{overview['mine']}", "title": "assigned to you"}
    ]
    if overview["supervisor"]:
        tabs.append({"key": "all", "label": "All pools"})
    for pool in overview["pools"]:
        tabs.append(
            {
                "key": f"pool:{pool['slug']}",
                "label": pool["name"],
                "count": f"{pool['queued']} queued",
                "title": "waiting in the queue",
                "breached": pool["breached"],
                "online": pool["members_online"],
            }
        )
    for tab in tabs:
        tab["selected"] = tab["key"] == view.tab
        tab["url"] = view.url(tab=tab["key"])
    return tabs


def queue_rows(*, user: Any, view: DeskView) -> list[dict[str, Any]]:
    """The tickets of the view's queue and filter that the viewer may see."""
    pool = None
    assignee_id = user.pk if view.tab == "mine" else None
    if view.tab.startswith("pool:"):
        pool = Pool.objects.filter(slug=view.tab.removeprefix("pool:")).first()
        if pool is None:
            return []
    statuses: list[str | None] = (
        list(OPEN_STATUSES)
        if view.filter == "open"
        else [None]
        if view.filter == "all"
        else [view.filter]
    )
    rows: list[dict[str, Any]] = []
    for status in statuses:
        tickets = pool_selectors.ticket_list_visible(
            user=user,
            pool=pool,
            status=status,
            assignee_id=assignee_id,
            queue_order=status == Status.QUEUED,
        )[:QUEUE_LIMIT]
        for ticket in TicketSummarySerializer(tickets, many=True).data:
            row = _summary(ticket)
            row["url"] = view.url(ticket=ticket["id"])
            rows.append(row)
    return rows


def queue_context(*, user: Any, view: DeskView) -> dict[str, Any]:
    """What the queue side of the page shows: tabs with counts, the filter and the rows."""
    overview = desk_overview(user=user)
    tabs = desk_tabs(overview=overview, view=view)
    if not any(tab["selected"] for tab in tabs):  # a pool the viewer no longer works
        view = replace(view, tab="mine")
        tabs = desk_tabs(overview=overview, view=view)
    return {
        "overview": overview,
        "view": view,
        "tabs": tabs,
        "filters": FILTERS,
        "rows": queue_rows(user=user, view=view),
    }


# --- one ticket -------------------------------------------------------------------------------


@dataclass
class TicketPanel:
    """One ticket as the viewer may see it, ready for the templates."""

    id: int
    ticket: dict[str, Any]
    messages: list[dict[str, Any]]
    notes: list[dict[str, Any]]
    activities: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    labels: list[dict[str, Any]]
    context: dict[str, Any] | None
    elsewhere: list[dict[str, Any]]
    canned: list[dict[str, Any]] = field(default_factory=list)
    draft: dict[str, Any] | None = None
    actions: dict[str, bool] = field(default_factory=dict)
    reroute_pools: list[dict[str, Any]] = field(default_factory=list)
    drafts_enabled: bool = False


def _actions(ticket: dict[str, Any], *, user: Any, supervisor: bool) -> dict[str, bool]:
    status = ticket["status"]
    is_open = status in OPEN_STATUSES
    mine = bool(ticket.get("assignee") and ticket["assignee"]["id"] == user.pk)
    return {
        "claim": status == Status.QUEUED,
        "unassign": status == Status.ASSIGNED and (mine or supervisor),
        "resolve": is_open or (supervisor and status != Status.RESOLVED),
        "reopen": status == Status.RESOLVED,
        "reroute": is_open,
    }


def ticket_panel(*, user: Any, ticket_id: int) -> TicketPanel | None:
    """The ticket as `user` may see it now, or None if they may not (moved, unknown)."""
    try:
        ticket = pool_selectors.ticket_get_visible(user=user, ticket_id=ticket_id)
    except NotFound:
        return None
    detail = TicketDetailSerializer(ticket, context={"user": user}).data
    summary = _summary(detail)
    newest_draft = selectors.draft_list(ticket=ticket).first()
    return TicketPanel(
        id=ticket.pk,
        ticket=summary,
        messages=[_message(message, summary) for message in detail["messages"]],
        notes=[{**note, "created": _when(note["created_at"])} for note in detail["notes"]],
        activities=[_activity(item) for item in detail["activities"]],
        decisions=[_decision(decision) for decision in detail["decisions"]],
        labels=list(detail["labels"]),
        context=_context(detail["context"]),
        elsewhere=list(detail["elsewhere"]),
        canned=services.canned_reply_list_rendered(ticket=ticket, agent=user),
        draft=_draft(newest_draft) if newest_draft else None,
        actions=_actions(summary, user=user, supervisor=pool_selectors.user_is_supervisor(user)),
        reroute_pools=[
            dict(pool)
            for pool in pool_selectors.pool_list().values("slug", "name")
            if pool["slug"] != ((summary.get("pool") or {}).get("slug"))
        ],
        drafts_enabled=bool(settings.ANTHROPIC_API_KEY),
    )


def _draft(draft: DraftReply) -> dict[str, Any]:
    return {"id": draft.pk, "status": draft.status, "text": draft.text, "error": draft.error}


# --- rendering ----------------------------------------------------------------------------------


def desk_page_context(*, user: Any, view: DeskView) -> dict[str, Any]:
    """What the page (or its main area) shows for `view`."""
    context = queue_context(user=user, view=view)
    view = context["view"]
    context["panel"] = ticket_panel(user=user, ticket_id=view.ticket) if view.ticket else None
    return context


def queue_render(*, user: Any, view: DeskView) -> str:
    """The tabs and the queue, to swap in (after a ticket or presence changed)."""
    return render_to_string("desk/socket/queue.html", queue_context(user=user, view=view))


def ticket_render(
    *, view: DeskView, panel: TicketPanel | None, ticket_id: int, full: bool = False
) -> str:
    """Every piece of the open ticket but its forms, to swap in (on a view frame, after a
    reconnect); with `full` the whole pane (it was shown as gone); without a panel the notice
    that the ticket is gone from the viewer's pools."""
    return render_to_string(
        "desk/socket/ticket.html",
        {"panel": panel, "view": view, "ticket_id": ticket_id, "full": full},
    )


def ticket_head_render(*, panel: TicketPanel) -> str:
    """The ticket's status line, actions and routing trail (after it changed)."""
    return render_to_string("desk/socket/head.html", {"panel": panel})


def context_render(*, panel: TicketPanel, view: DeskView) -> str:
    """The ticket's context, once gathered."""
    return render_to_string("desk/socket/context.html", {"panel": panel, "view": view})


def message_render(*, user: Any, ticket_id: int, message_id: int) -> str:
    """One message of the ticket to append, if the viewer may see it; else nothing."""
    try:
        ticket = pool_selectors.ticket_get_visible(user=user, ticket_id=ticket_id)
    except NotFound:
        return ""
    seen = pool_selectors.ticket_conversation_visible(user=user, ticket=ticket)
    message = (
        seen.messages.filter(pk=message_id)
        .select_related("author")
        .prefetch_related("attachments")
        .first()
    )
    if message is None:
        return ""
    summary = _summary(TicketSummarySerializer(ticket).data)
    item = _message(dict(DeskMessageSerializer(message).data), summary)
    return render_to_string(
        "desk/socket/append.html",
        {"ticket_id": ticket_id, "part": "messages", "message": item, "typing_off": True},
    )


def note_render(*, ticket_id: int, note_id: int) -> str:
    """One note of the ticket to append."""
    note = InternalNote.objects.filter(pk=note_id, ticket_id=ticket_id).first()
    if note is None:
        return ""
    data = dict(NoteSerializer(note).data)
    data["created"] = _when(data["created_at"])
    return render_to_string(
        "desk/socket/append.html", {"ticket_id": ticket_id, "part": "notes", "note": data}
    )


def activity_render(*, ticket_id: int, activity_id: int) -> str:
    """One activity of the ticket to append."""
    item = TicketActivity.objects.filter(pk=activity_id, ticket_id=ticket_id).first()
    if item is None:
        return ""
    data = _activity(ActivitySerializer(item).to_representation(item))
    return render_to_string(
        "desk/socket/append.html", {"ticket_id": ticket_id, "part": "activity", "item": data}
    )


def draft_render(*, ticket_id: int, draft_id: int) -> str:
    """The ticket's draft (pending, ready or failed) for the page that asked for it."""
    draft = DraftReply.objects.filter(pk=draft_id, ticket_id=ticket_id).first()
    if draft is None:
        return ""
    return render_to_string(
        "desk/socket/draft.html", {"ticket_id": ticket_id, "draft": _draft(draft)}
    )


def typing_render(*, ticket_id: int) -> str:
    """The customer is typing (the page hides it again after a few seconds)."""
    return render_to_string("desk/socket/typing.html", {"ticket_id": ticket_id})


def presence_render(*, presence: str) -> str:
    """The agent's presence menu, as the server now has it."""
    return render_to_string("desk/socket/presence.html", {"presence": presence})


def error_render(*, code: str, message: str) -> str:
    """The page's error box, showing a refused frame's error."""
    return render_to_string("desk/socket/error.html", {"code": code, "message": message})
