"""An agent's presence, from their desk sockets: online, away or offline; offline past the grace
period returns their tickets to the queues. Coming online offers their free slots to waiting
tickets (apps/pools/services.py)."""

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.errors import Conflict
from apps.pools import selectors
from apps.pools.models import AgentProfile
from apps.pools.realtime import desk_presence_publish
from apps.pools.services import agent_slots_fill, ticket_requeue
from apps.tickets.models import Ticket, TicketActivity

logger = logging.getLogger(__name__)

Status = Ticket.Status
Kind = TicketActivity.Kind
Presence = AgentProfile.Presence


def _profile_lock(user_id: int) -> AgentProfile:
    AgentProfile.objects.get_or_create(user_id=user_id)
    return AgentProfile.objects.select_for_update(no_key=True).get(user_id=user_id)


def _presence_changed(profile: AgentProfile) -> None:
    pool_ids = selectors.user_pool_ids(user=profile.user)
    desk_presence_publish(user_id=profile.user_id, presence=profile.presence, pool_ids=pool_ids)
    if profile.presence == Presence.ONLINE:
        agent_slots_fill(user_id=profile.user_id)


@transaction.atomic
def agent_presence_connect(*, user: Any) -> AgentProfile:
    """A desk socket of `user` opened: they are online (unless they chose away)."""
    profile = _profile_lock(user.pk)
    was = profile.presence
    profile.sockets += 1
    profile.last_seen_at = timezone.now()
    profile.offline_since = None
    if profile.presence == Presence.OFFLINE:
        profile.presence = Presence.ONLINE
    profile.save()
    if profile.presence != was:
        _presence_changed(profile)
    return profile


@transaction.atomic
def agent_presence_disconnect(*, user: Any) -> AgentProfile:
    """A desk socket of `user` closed: with none left they are offline (tickets stay theirs for
    the grace period)."""
    profile = _profile_lock(user.pk)
    profile.sockets = max(0, profile.sockets - 1)
    if profile.sockets == 0 and profile.presence != Presence.OFFLINE:
        profile.presence = Presence.OFFLINE
        profile.offline_since = timezone.now()
        profile.save()
        _presence_changed(profile)
    else:
        profile.save()
    return profile


@transaction.atomic
def agent_presence_set(*, user: Any, presence: str) -> AgentProfile:
    """The agent chose online or away. Away keeps their tickets but takes no new ones."""
    if presence not in (Presence.ONLINE, Presence.AWAY):
        raise Conflict("Presence can be set to online or away.")
    profile = _profile_lock(user.pk)
    if profile.sockets == 0:
        raise Conflict("Open the desk to go online.")
    if profile.presence != presence:
        profile.presence = presence
        profile.last_seen_at = timezone.now()
        profile.save()
        _presence_changed(profile)
    return profile


def agent_presence_heartbeat(*, user: Any) -> None:
    """A desk socket is alive. An agent the sweep had marked offline (missed heartbeats, e.g. a
    stalled server) whose socket is still open counts as connected again."""
    if AgentProfile.objects.filter(user_id=user.pk, sockets__gt=0).update(
        last_seen_at=timezone.now()
    ):
        return
    agent_presence_connect(user=user)


def agents_offline_release(*, now: datetime | None = None) -> list[int]:
    """Mark agents not heard from lately as offline, and return the tickets of agents offline
    for longer than the grace period to their pools' queues. Returns the released ticket ids."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.AGENT_PRESENCE_TIMEOUT_SECONDS)
    for profile in AgentProfile.objects.filter(sockets__gt=0, last_seen_at__lt=stale_before):
        with transaction.atomic():
            locked = _profile_lock(profile.user_id)
            if locked.sockets and locked.last_seen_at and locked.last_seen_at < stale_before:
                locked.sockets = 0
                locked.presence = Presence.OFFLINE
                locked.offline_since = locked.last_seen_at
                locked.save()
                _presence_changed(locked)
    grace_before = now - timedelta(seconds=settings.AGENT_OFFLINE_GRACE_SECONDS)
    away_users = AgentProfile.objects.filter(
        presence=Presence.OFFLINE, offline_since__lt=grace_before
    ).values_list("user_id", flat=True)
    released = []
    for ticket in Ticket.objects.filter(status=Status.ASSIGNED, assignee_id__in=list(away_users)):
        with transaction.atomic():
            locked_ticket = Ticket.objects.select_for_update(no_key=True).get(pk=ticket.pk)
            if locked_ticket.status != Status.ASSIGNED or locked_ticket.assignee_id is None:
                continue
            ticket_requeue(ticket=locked_ticket, kind=Kind.RETURNED, actor=None)
            released.append(locked_ticket.pk)
    if released:
        logger.info("returned %d tickets of offline agents to their queues", len(released))
    return released
