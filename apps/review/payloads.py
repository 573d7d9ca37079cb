"""What the `review.created` webhook event tells an integrator: why the ticket needs a person
and which pools came close; never customer text (apps/tickets/payloads.py says why)."""

from typing import Any

from apps.review.models import ReviewItem
from apps.tickets.payloads import iso


def review_created_payload(*, item: ReviewItem) -> dict[str, Any]:
    """`review.created`: why the ticket needs a person and which pools came close."""
    suggested = item.suggested_pool
    return {
        "review_item": item.pk,
        "ticket": item.ticket_id,
        "conversation": str(item.ticket.conversation_id),
        "reason": item.reason,
        "tier": item.tier or None,
        "suggested_pool": suggested.slug if suggested is not None else None,
        "candidates": [
            {"pool": str(c.get("pool")), "score": c.get("score")} for c in item.candidates
        ],
        "created_at": iso(item.created_at),
    }
