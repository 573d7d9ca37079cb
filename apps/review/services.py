"""Write-side operations of the review queue: open an item when routing gives up, and resolve
it — routing the ticket and recording the reviewer's verdict as a label — in one call."""

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.chat.models import Message
from apps.core.errors import Conflict, PermissionDenied, ValidationFailed
from apps.core.sql import Condition, rows_insert, rows_where
from apps.orchestrator.models import RoutingDecision
from apps.pools.models import Pool
from apps.pools.services import ticket_queue
from apps.review.models import ReviewItem, RoutingLabel
from apps.review.payloads import review_created_payload
from apps.tickets.models import Ticket
from apps.tickets.services import ticket_message_post, ticket_status_set
from apps.webhooks.services import webhook_event_emit

Verdict = ReviewItem.Verdict
REVIEW_NOTE_MAX_CHARS = 500
# A candidate this unlikely is no suggestion (e.g. the runner-up when the model said "other").
SUGGEST_MIN_SCORE = 0.2
NO_POOL_MESSAGE = (
    "We looked at your request and it is not something our support teams handle here. "
    "If we misunderstood, write again with a few more details."
)


def user_can_review(user: Any) -> bool:
    """Reviewers (the `review.resolve_reviewitem` permission) and superusers resolve items."""
    return bool(
        user.is_authenticated
        and user.is_active
        and user.is_staff
        and (user.is_superuser or user.has_perm("review.resolve_reviewitem"))
    )


def _candidate_list(candidates: Mapping[str, float]) -> list[dict[str, Any]]:
    ranked = sorted(candidates.items(), key=lambda pair: (-pair[1], pair[0]))
    return [{"pool": slug, "score": round(float(score), 4)} for slug, score in ranked]


def review_item_open(
    *,
    ticket: Ticket,
    reason: str,
    candidates: Mapping[str, float] | None = None,
    decision: RoutingDecision | None = None,
) -> ReviewItem:
    """Queue a ticket for a person: why, which pools came close (best first), and the trail's
    final decision. At most one open review item per ticket."""
    ranked = _candidate_list(candidates or {})
    close = [c["pool"] for c in ranked if c["score"] >= SUGGEST_MIN_SCORE]
    active = (
        {pool.slug: pool for pool in Pool.objects.filter(active=True, slug__in=close)}
        if close
        else {}
    )
    suggested = next((active[slug] for slug in close if slug in active), None)
    if reason not in ReviewItem.Reason.values:
        reason = ReviewItem.Reason.LOW_CONFIDENCE
    # get_or_create, with its read written once (a routing run holds SQLite's write lock here).
    open_item: list[Condition] = [
        ("ticket", "=", ticket.pk),
        ("kind", "=", ReviewItem.Kind.REVIEW),
        ("status", "=", ReviewItem.Status.OPEN),
    ]
    existing = rows_where(ReviewItem, open_item, limit=1)
    if existing:
        return existing[0]
    try:
        with transaction.atomic():
            (item,) = rows_insert(
                [
                    ReviewItem(
                        ticket=ticket,
                        kind=ReviewItem.Kind.REVIEW,
                        status=ReviewItem.Status.OPEN,
                        reason=reason,
                        candidates=ranked,
                        suggested_pool=suggested,
                        decision=decision,
                        tier=decision.tier if decision else "",
                    )
                ]
            )
    except IntegrityError:  # opened meanwhile (one open item per ticket and kind)
        return rows_where(ReviewItem, open_item, limit=1)[0]
    webhook_event_emit(event="review.created", payload=review_created_payload(item=item))
    return item


def _labelled_text(item: ReviewItem) -> str:
    decisions = RoutingDecision.objects.filter(ticket=item.ticket, dry_run=False).exclude(
        redacted=""
    )
    text = decisions.order_by("-created_at", "-id").values_list("redacted", flat=True)
    return (item.decision.redacted if item.decision else "") or text.first() or ""


def review_item_resolve(
    *,
    item: ReviewItem,
    reviewer: Any,
    verdict: str,
    pool: Pool | None = None,
    note: str = "",
) -> ReviewItem:
    """Record the reviewer's verdict and act on it in one transaction.

    `confirmed` takes the suggested pool (or, for an audit, the pool the router chose);
    `routed` takes `pool`; `no_pool` needs a note. A review item's ticket is then queued in the
    pool (the customer sees the team, an agent is assigned) or, with no pool, closed with a
    message. An audit never held its ticket: a wrong automatic decision moves the ticket if it
    is still waiting or being worked. Every verdict becomes a RoutingLabel.
    """
    if not user_can_review(reviewer):
        raise PermissionDenied("Only reviewers can resolve review items.")
    note = note.strip()
    if len(note) > REVIEW_NOTE_MAX_CHARS:
        raise ValidationFailed(f"Notes are limited to {REVIEW_NOTE_MAX_CHARS} characters.")
    with transaction.atomic():
        locked = (
            ReviewItem.objects.select_for_update(of=("self",), no_key=True)
            .select_related("ticket", "decision", "decision__pool", "suggested_pool")
            .get(pk=item.pk)
        )
        if locked.status != ReviewItem.Status.OPEN:
            raise Conflict("This item was already resolved.")
        chosen = _verdict_pool(locked, verdict=verdict, pool=pool, note=note)
        ticket = (
            Ticket.objects.select_for_update(of=("self",), no_key=True)
            .select_related("conversation", "pool")
            .get(pk=locked.ticket_id)
        )
        previous_pool = ticket.pool if locked.kind == ReviewItem.Kind.AUDIT else None
        if locked.kind == ReviewItem.Kind.REVIEW:
            _review_act(ticket, chosen, reviewer)
        else:
            _audit_act(ticket, chosen, reviewer)
        RoutingLabel.objects.create(
            ticket=ticket,
            decision=locked.decision,
            source=RoutingLabel.Source.REVIEW
            if locked.kind == ReviewItem.Kind.REVIEW
            else RoutingLabel.Source.AUDIT,
            previous_pool=previous_pool or (locked.decision.pool if locked.decision else None),
            pool=chosen,
            text=_labelled_text(locked),
            reason=note,
            author=reviewer,
        )
        locked.status = ReviewItem.Status.RESOLVED
        locked.verdict = verdict
        locked.verdict_pool = chosen
        locked.note = note
        locked.resolved_by = reviewer
        locked.resolved_at = timezone.now()
        locked.save()
    return locked


def _verdict_pool(item: ReviewItem, *, verdict: str, pool: Pool | None, note: str) -> Pool | None:
    if verdict == Verdict.CONFIRMED:
        if item.kind == ReviewItem.Kind.AUDIT:
            chosen = item.decision.pool if item.decision else None
        else:
            chosen = item.suggested_pool
        if chosen is None:
            raise ValidationFailed("There is no suggested pool to confirm; choose a pool.")
    elif verdict == Verdict.ROUTED:
        if pool is None:
            raise ValidationFailed("Choose the pool the ticket belongs to.")
        chosen = pool
    elif verdict == Verdict.NO_POOL:
        if not note:
            raise ValidationFailed("Say in a note why no pool fits.")
        return None
    else:
        raise ValidationFailed(f"Unknown verdict {verdict!r}.")
    if not chosen.active:
        raise Conflict(f"The {chosen.name} pool is not active.")
    return chosen


def _review_act(ticket: Ticket, pool: Pool | None, reviewer: Any) -> None:
    if ticket.status != Ticket.Status.IN_REVIEW:
        raise Conflict("The ticket is no longer waiting for review.")
    if pool is not None:
        ticket_queue(ticket=ticket, pool=pool, actor=reviewer)
        return
    # Said while the ticket is still open, so the message belongs to it.
    ticket_message_post(
        conversation=ticket.conversation, text=NO_POOL_MESSAGE, sender=Message.Sender.BOT
    )
    ticket_status_set(ticket=ticket, status=Ticket.Status.RESOLVED, change="resolved")


def _audit_act(ticket: Ticket, pool: Pool | None, reviewer: Any) -> None:
    still_open = ticket.status in (Ticket.Status.QUEUED, Ticket.Status.ASSIGNED)
    if still_open and pool is not None and ticket.pool_id != pool.pk:
        ticket_queue(ticket=ticket, pool=pool, actor=reviewer)


def review_items_resolve(
    *,
    items: Iterable[ReviewItem],
    reviewer: Any,
    verdict: str,
    pool: Pool | None = None,
    note: str = "",
) -> tuple[list[ReviewItem], list[tuple[ReviewItem, str]]]:
    """Resolve several items with one verdict; each in its own transaction. Returns the
    resolved items and, for the others, why they were not."""
    done: list[ReviewItem] = []
    refused: list[tuple[ReviewItem, str]] = []
    for item in items:
        try:
            done.append(
                review_item_resolve(
                    item=item, reviewer=reviewer, verdict=verdict, pool=pool, note=note
                )
            )
        except (Conflict, ValidationFailed) as exc:
            refused.append((item, exc.message))
    return done, refused
