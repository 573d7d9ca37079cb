"""A routing outcome, applied: the ticket goes to a pool's queue (and, sometimes, to an audit),
waits for a fact the pool needs, or goes to the review queue; a customer who asked for a person
is told who will answer. Routing itself (tiers, decisions, the lease) is the orchestrator's."""

from django.db import transaction

from apps.chat.models import Conversation, Message
from apps.chat.services import conversation_wants_human_set
from apps.orchestrator import services as routing
from apps.orchestrator.models import RoutingDecision
from apps.orchestrator.providers.base import RouterProvider
from apps.orchestrator.selectors import ticket_deciding_tier
from apps.orchestrator.services import RoutedTicket, clarify_question, handoff_message
from apps.pools.services import ticket_queue
from apps.review.audit import audit_item_maybe_open
from apps.review.services import review_item_open
from apps.tickets.models import Ticket, TicketActivity
from apps.tickets.services import ticket_activity_add, ticket_message_post, ticket_status_set

ROUTABLE = (Ticket.Status.ROUTING, Ticket.Status.AWAITING_CUSTOMER)


def ticket_route(
    *, ticket: Ticket, provider: RouterProvider | None = None, run_id: str | None = None
) -> RoutingDecision | None:
    """Route a ticket and move it where the outcome says, in the transaction that records the
    decisions (see `apps.orchestrator.services.ticket_route`)."""
    return routing.ticket_route(
        ticket=ticket, apply=routing_outcome_apply, provider=provider, run_id=run_id
    )


def routing_outcome_apply(routed: RoutedTicket) -> None:
    """Move the routed ticket: queue, clarify or review (called inside the routing run's
    transaction, the ticket locked)."""
    ticket, outcome = routed.ticket, routed.outcome
    if routed.human:
        ticket_activity_add(ticket, TicketActivity.Kind.HUMAN_REQUESTED)
    if outcome.action == "route":
        assert outcome.pool is not None
        ticket_queue(ticket=ticket, pool=outcome.pool, tier=_deciding_tier(routed))
        if not routed.human:
            audit_item_maybe_open(ticket=ticket, decision=routed.decisions[-1])
    elif outcome.action == "clarify":
        assert outcome.pool is not None
        ticket.pool = outcome.pool
        ticket_status_set(ticket=ticket, status=Ticket.Status.AWAITING_CUSTOMER)
        ticket_message_post(
            conversation=ticket.conversation,
            text=clarify_question(pool_name=outcome.pool.name, fields=outcome.missing_fields),
            sender=Message.Sender.BOT,
        )
    else:
        ticket_status_set(ticket=ticket, status=Ticket.Status.IN_REVIEW)
        review_item_open(
            ticket=ticket,
            reason=outcome.review_reason,
            candidates=outcome.candidates,
            decision=routed.decisions[-1],
        )
    if routed.human:
        ticket_message_post(
            conversation=ticket.conversation,
            text=handoff_message(pool_name=outcome.pool.name if outcome.pool else None),
            sender=Message.Sender.BOT,
        )


def _deciding_tier(routed: RoutedTicket) -> str | None:
    """The tier that chose the pool: this run's deciding attempt, held in memory; the one
    before it when this run recorded none (a person asked for, the pool already known)."""
    for decision in reversed(routed.decisions):
        if decision.ends_run:
            return str(decision.tier)
    return ticket_deciding_tier(ticket_id=routed.ticket.pk)


def ticket_human_request(*, conversation: Conversation) -> Ticket | None:
    """The customer asked for a person ("talk to a person"), at any point.

    Before any message: remembered, and their first message skips the model tiers. While the
    ticket is being routed (or waits for a fact): it goes to a pool queue at once, or to review
    when no cheap tier finds a pool. Already with a team: acknowledged. Returns the ticket.
    """
    ticket = (
        Ticket.objects.filter(conversation=conversation)
        .exclude(status=Ticket.Status.RESOLVED)
        .select_related("pool")
        .first()
    )
    if ticket is None:
        if Conversation.objects.filter(pk=conversation.pk, wants_human=True).exists():
            return None  # asked already (a second press): acknowledged once
        conversation_wants_human_set(conversation=conversation)
        ticket_message_post(
            conversation=conversation,
            text="Of course. Tell us in a few words what you need and a person will pick it up.",
            sender=Message.Sender.BOT,
        )
        return None
    if ticket.status in ROUTABLE:
        Ticket.objects.filter(pk=ticket.pk).update(human_requested=True)
        ticket_route(ticket=ticket)
    elif not ticket.human_requested:
        with transaction.atomic():
            Ticket.objects.filter(pk=ticket.pk).update(human_requested=True)
            ticket_activity_add(ticket, TicketActivity.Kind.HUMAN_REQUESTED)
            ticket_message_post(
                conversation=conversation,
                text=handoff_message(
                    pool_name=ticket.pool.name
                    if ticket.pool and ticket.status != Ticket.Status.IN_REVIEW
                    else None
                ),
                sender=Message.Sender.BOT,
            )
    ticket.refresh_from_db()
    return ticket
