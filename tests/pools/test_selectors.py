"""Who sees which ticket, and the read-side queries the desk and assignment rely on."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.chat.models import Message
from apps.chat.services import conversation_create
from apps.core.errors import NotFound
from apps.desk.models import CannedReply
from apps.desk.selectors import canned_reply_list
from apps.flows.demo import DEFAULT_POOLS
from apps.flows.messages import message_post
from apps.pools.models import AgentProfile, Pool
from apps.pools.presence import agent_presence_connect
from apps.pools.selectors import (
    agent_load,
    pool_agents_online,
    pool_list_for_user,
    queue_counts,
    ticket_can_access,
    ticket_get_visible,
    ticket_list_visible,
    user_is_supervisor,
    user_pool_ids,
)
from apps.pools.services import (
    pool_membership_set,
    pool_upsert,
    ticket_claim,
    ticket_queue,
    tickets_sla_check,
)
from apps.tickets.models import Ticket
from apps.tickets.services import ticket_status_set

pytestmark = pytest.mark.django_db

Status = Ticket.Status


@pytest.fixture
def pools(db) -> dict[str, Pool]:
    return {spec["slug"]: pool_upsert(**spec) for spec in DEFAULT_POOLS}


def staff(username: str, *, pools=(), supervisor: bool = False, **fields) -> User:
    user = User.objects.create_user(username, password="pw", is_staff=True, **fields)
    if supervisor:
        user.user_permissions.add(Permission.objects.get(codename="supervise"))
    if pools:
        pool_membership_set(user=user, pools=pools)
    return user


def opened(text: str = "Hello") -> Ticket:
    """A ticket the customer just opened (still routing, no pool)."""
    conversation = conversation_create(name="Grace").conversation
    message_post(conversation=conversation, text=text, sender=Message.Sender.CUSTOMER)
    return Ticket.objects.get(conversation=conversation)


def queued(pool: Pool, text: str = "Where is my invoice?") -> Ticket:
    return ticket_queue(ticket=opened(text), pool=pool)


@pytest.fixture
def tickets(pools) -> dict[str, Ticket]:
    in_review = opened("Something odd")
    ticket_status_set(ticket=in_review, status=Status.IN_REVIEW)
    return {
        "billing": queued(pools["billing"]),
        "technical": queued(pools["technical"], "The app crashes when I log in"),
        "routing": opened("Just arrived"),
        "in_review": in_review,
    }


def visible_ids(user: User, **filters) -> set[int]:
    return set(ticket_list_visible(user=user, **filters).values_list("pk", flat=True))


def test_an_agent_lists_only_the_tickets_of_their_pools(pools, tickets):
    bea = staff("bea", pools=[pools["billing"]])
    assert visible_ids(bea) == {tickets["billing"].pk}
    assert visible_ids(bea, pool=pools["technical"]) == set()
    assert visible_ids(bea, conversation_id=tickets["technical"].conversation_id) == set()


def test_an_agent_cannot_get_a_ticket_of_another_pool_nor_tell_it_exists(pools, tickets):
    bea = staff("bea", pools=[pools["billing"]])
    assert ticket_get_visible(user=bea, ticket_id=tickets["billing"].pk) == tickets["billing"]
    with pytest.raises(NotFound) as hidden:
        ticket_get_visible(user=bea, ticket_id=tickets["technical"].pk)
    with pytest.raises(NotFound) as missing:
        ticket_get_visible(user=bea, ticket_id=10**9)
    assert hidden.value.message == missing.value.message
    assert not ticket_can_access(user=bea, ticket=tickets["technical"])


@pytest.mark.parametrize("ticket", ["routing", "in_review"])
def test_an_agent_never_sees_tickets_without_a_pool(pools, tickets, ticket):
    bea = staff("bea", pools=[pools["billing"], pools["technical"]])
    with pytest.raises(NotFound):
        ticket_get_visible(user=bea, ticket_id=tickets[ticket].pk)
    assert tickets[ticket].pk not in visible_ids(bea)


def test_a_supervisor_by_permission_sees_every_ticket_including_routing_and_review(tickets):
    sam = staff("sam", supervisor=True)
    assert user_is_supervisor(sam)
    assert visible_ids(sam) == {ticket.pk for ticket in tickets.values()}
    for ticket in tickets.values():
        assert ticket_get_visible(user=sam, ticket_id=ticket.pk) == ticket


def test_a_supervisor_by_group_or_superuser_sees_every_ticket(tickets):
    managers = Group.objects.create(name="Managers")
    managers.permissions.add(Permission.objects.get(codename="supervise"))
    manager = staff("mia")
    manager.groups.add(managers)
    root = staff("root", is_superuser=True)
    for user in (User.objects.get(pk=manager.pk), root):
        assert user_is_supervisor(user)
        assert visible_ids(user) == {ticket.pk for ticket in tickets.values()}


def test_a_user_who_is_not_active_staff_sees_nothing(pools, tickets):
    customer_like = User.objects.create_user("carl", password="pw", is_superuser=True)
    customer_like.user_permissions.add(Permission.objects.get(codename="supervise"))
    pool_membership_set(user=customer_like, pools=[pools["billing"]])
    gone = staff("gone", pools=[pools["billing"]], supervisor=True, is_active=False)
    for user in (User.objects.get(pk=customer_like.pk), gone):
        assert not user_is_supervisor(user)
        assert user_pool_ids(user=user) == []
        assert visible_ids(user) == set()
        with pytest.raises(NotFound):
            ticket_get_visible(user=user, ticket_id=tickets["billing"].pk)


def test_leaving_a_pool_takes_its_tickets_out_of_sight(pools, tickets):
    bea = staff("bea", pools=[pools["billing"]])
    pool_membership_set(user=bea, pools=[pools["technical"]])
    assert visible_ids(bea) == {tickets["technical"].pk}


def test_pools_listed_for_a_user_are_theirs_or_all_for_a_supervisor(pools):
    bea = staff("bea", pools=[pools["billing"]])
    assert list(pool_list_for_user(user=bea)) == [pools["billing"]]
    assert set(pool_list_for_user(user=staff("sam", supervisor=True))) == set(pools.values())


def test_the_list_filters_and_orders_the_queue_oldest_first(pools):
    bea = staff("bea", pools=[pools["billing"]])
    first, second, third = (queued(pools["billing"]) for _ in range(3))
    ticket_claim(ticket=second, actor=bea)
    queue = ticket_list_visible(user=bea, status=Status.QUEUED, queue_order=True)
    assert list(queue) == [first, third]
    assert list(ticket_list_visible(user=bea, assignee_id=bea.pk)) == [second]
    latest = ticket_list_visible(user=bea).first()
    assert latest == second  # the claim is the latest activity
    assert vars(latest)["last_message_text"] == "Where is my invoice?"


def test_agent_load_counts_assigned_tickets_of_every_pool(pools):
    ann = staff("ann", pools=[pools["billing"], pools["technical"]])
    bob = staff("bob", pools=[pools["billing"]])
    ticket_claim(ticket=queued(pools["billing"]), actor=ann)
    ticket_claim(ticket=queued(pools["technical"], "It crashes"), actor=ann)
    queued(pools["billing"])  # waiting: nobody's load
    assert agent_load(user_ids=[ann.pk, bob.pk]) == {ann.pk: 2}


def test_pool_agents_online_are_its_active_staff_members_who_are_online(pools):
    ann = staff("ann", pools=[pools["billing"]])
    staff("tom", pools=[pools["technical"]])
    staff("off", pools=[pools["billing"]])  # never connected: offline
    gone = staff("gone", pools=[pools["billing"]])
    demoted = staff("dem", pools=[pools["billing"]])
    for user in User.objects.all():
        agent_presence_connect(user=user)
    User.objects.filter(pk=gone.pk).update(is_active=False)
    User.objects.filter(pk=demoted.pk).update(is_staff=False)
    AgentProfile.objects.filter(user__username="off").update(presence="offline", sockets=0)
    with CaptureQueriesContext(connection) as queries:
        agents = pool_agents_online(pool=pools["billing"], lock=True)
    assert [profile.user for profile in agents] == [ann]
    assert len(queries) == 3  # memberships, online profiles, their users: no join compiled


def test_queue_counts_show_the_users_pools_presence_breaches_and_own_tickets(pools):
    bea = staff("bea", pools=[pools["billing"]])
    staff("ben", pools=[pools["billing"]])  # offline
    ticket_claim(ticket=queued(pools["billing"]), actor=bea)
    late = queued(pools["billing"])
    queued(pools["billing"], "Another invoice")
    queued(pools["technical"], "It crashes")  # not Bea's pool
    assert late.sla_due_at is not None
    tickets_sla_check(now=late.sla_due_at + timedelta(seconds=1))  # all three billing ones
    pool_membership_set(user=bea, pools=[pools["billing"]], capacity=2)
    agent_presence_connect(user=bea)  # takes the oldest waiting one
    assert queue_counts(user=bea) == {
        "pools": [
            {
                "id": pools["billing"].pk,
                "slug": "billing",
                "name": "Billing",
                "queued": 1,
                "assigned": 2,
                "breached": 3,
                "members_online": 1,
            }
        ],
        "mine": 2,
    }


def test_canned_replies_of_a_pool_are_its_own_and_the_shared_active_ones(pools):
    shared = CannedReply.objects.create(title="Anything else?", text="…")
    own = CannedReply.objects.create(pool=pools["billing"], title="Invoice", text="…")
    CannedReply.objects.create(pool=pools["technical"], title="Reboot", text="…")
    CannedReply.objects.create(pool=pools["billing"], title="Old", text="…", active=False)
    assert list(canned_reply_list(pool=pools["billing"])) == [shared, own]
    assert list(canned_reply_list(pool=None)) == [shared]
