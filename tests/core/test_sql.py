"""`rows_where`, `rows_update`, `rows_insert` and `row_save`: the hot path's statements, written
from the models' metadata, give what the ORM gives, lock where the database has row locks, and
compile nothing."""

from unittest import mock

import pytest
from django.db import connection
from django.db.backends.postgresql.base import DatabaseWrapper as PostgresWrapper
from django.db.models.sql.compiler import SQLCompiler
from django.test.utils import CaptureQueriesContext

from apps.chat.models import Conversation, ConversationEvent, Message
from apps.chat.services import conversation_create
from apps.core.sql import (
    Condition,
    insert_statement,
    row_save,
    rows_insert,
    rows_update,
    rows_where,
    statement,
)
from apps.tickets.models import Ticket

pytestmark = pytest.mark.django_db


def _tickets(statuses: list[str]) -> list[Ticket]:
    return [
        Ticket.objects.create(conversation=conversation_create().conversation, status=status)
        for status in statuses
    ]


def test_the_rows_and_their_values_are_the_orms():
    tickets = _tickets(["awaiting_customer", "resolved", "routing", "resolved", "in_review"])
    outside = _tickets(["routing"])  # not asked for
    asked = [ticket.conversation_id for ticket in tickets]
    orm = Ticket.objects.filter(conversation__in=asked).exclude(status="resolved")
    rows = rows_where(
        Ticket, [("conversation", "in", asked), ("status", "<>", Ticket.Status.RESOLVED)]
    )
    assert sorted((t.pk, t.conversation_id, t.status, t.created_at) for t in rows) == sorted(
        (t.pk, t.conversation_id, t.status, t.created_at) for t in orm
    )
    assert len(rows) == 3
    assert outside[0].pk not in {t.pk for t in rows}
    assert all(isinstance(t.conversation_id, type(tickets[0].conversation_id)) for t in rows)


def test_named_columns_are_loaded_and_the_others_deferred_in_the_order_asked():
    conversations = [conversation_create().conversation for _ in range(4)]
    ids = [c.pk for c in conversations]
    rows = rows_where(
        Conversation, [("id", "in", ids)], columns=("last_seq", "wants_human"), order_by="id"
    )
    assert [row.pk for row in rows] == sorted(ids)
    assert "last_seq" not in rows[0].get_deferred_fields()
    assert "customer_id" in rows[0].get_deferred_fields()


def test_ranges_order_and_limit_are_the_orms():
    conversation = conversation_create().conversation
    for seq in range(1, 7):
        ConversationEvent.objects.create(
            conversation=conversation,
            seq=seq,
            type=ConversationEvent.Type.STATUS,
            payload={"n": seq},
        )
    for after, until, limit in [(0, None, None), (2, None, None), (1, 4, None), (0, None, 2)]:
        orm = ConversationEvent.objects.filter(conversation=conversation, seq__gt=after)
        where: list[Condition] = [("conversation", "=", conversation.pk), ("seq", ">", after)]
        if until is not None:
            orm = orm.filter(seq__lte=until)
            where.append(("seq", "<=", until))
        expected = list(orm.order_by("seq"))[:limit]
        rows = rows_where(ConversationEvent, where, order_by="seq", limit=limit)
        assert [(e.pk, e.seq, e.payload) for e in rows] == [
            (e.pk, e.seq, e.payload) for e in expected
        ]


def test_several_orderings_ascending_and_descending_are_the_orms():
    tickets = _tickets(["resolved", "routing", "resolved", "in_review", "routing"])
    asked = [ticket.conversation_id for ticket in tickets]
    for order in (["-status", "id"], ["status", "-id"], "-id"):
        names = [order] if isinstance(order, str) else order
        orm = Ticket.objects.filter(conversation__in=asked).order_by(*names)
        rows = rows_where(Ticket, [("conversation", "in", asked)], order_by=order, limit=4)
        assert [t.pk for t in rows] == [t.pk for t in orm][:4]


def test_every_value_comes_back_as_the_orm_gives_it_whatever_order_the_columns_are_named():
    """Converted as the ORM converts (aware timestamps, UUIDs, booleans, JSON), each value in
    its own field even when the columns are named out of the model's order."""
    conversation = conversation_create(name="Ada", email="ada@example.com").conversation
    Conversation.objects.filter(pk=conversation.pk).update(wants_human=True, last_seq=7)
    ConversationEvent.objects.create(
        conversation=conversation, seq=1, type=ConversationEvent.Type.STATUS, payload={"a": [1]}
    )
    orm = Conversation.objects.get(pk=conversation.pk)
    (whole,) = rows_where(Conversation, [("id", "=", conversation.pk)])
    fields = [f.attname for f in Conversation._meta.concrete_fields]
    assert [getattr(whole, name) for name in fields] == [getattr(orm, name) for name in fields]
    (some,) = rows_where(
        Conversation, [("id", "=", conversation.pk)], columns=("wants_human", "last_seq")
    )
    assert (some.wants_human, some.last_seq, some.pk) == (True, 7, conversation.pk)
    assert "created_at" in some.get_deferred_fields()
    (event,) = rows_where(ConversationEvent, [("conversation", "=", conversation.pk)])
    assert (event.payload, event.conversation_id, event.created_at.tzinfo is not None) == (
        {"a": [1]},
        conversation.pk,
        True,
    )


def test_an_empty_in_list_matches_nothing_without_a_query():
    with CaptureQueriesContext(connection) as queries:
        assert rows_where(Ticket, [("conversation", "in", [])]) == []
    assert len(queries) == 0


def test_values_are_parameters_never_part_of_the_statement():
    sql = statement(
        Ticket,
        ("status",),
        (("status", "=", 0), ("pool", "in", 3)),
        order_by=None,
        lock=False,
        db=connection,
    )
    assert sql == (
        'SELECT "id", "status" FROM "chat_ticket" WHERE "status" = %s AND "pool_id" IN (%s, %s, %s)'
    )


def test_nothing_is_compiled_by_the_orm():
    tickets = _tickets(["routing", "in_review"])
    with mock.patch.object(SQLCompiler, "as_sql", side_effect=AssertionError("compiled")):
        rows = rows_where(Ticket, [("conversation", "in", [t.conversation_id for t in tickets])])
    assert len(rows) == 2


def test_a_locking_read_is_for_no_key_update_on_postgresql_and_plain_on_sqlite():
    postgres = PostgresWrapper({"NAME": "x", "USER": "", "PASSWORD": "", "HOST": "", "PORT": ""})
    shape = (("id", "in", 2),)
    on_postgres = statement(
        Conversation, ("last_seq",), shape, order_by="id", lock=True, db=postgres
    )
    assert on_postgres == (
        'SELECT "id", "last_seq" FROM "chat_conversation" WHERE "id" IN (%s, %s) '
        'ORDER BY "id" FOR NO KEY UPDATE'
    )
    on_sqlite = statement(
        Conversation, ("last_seq",), shape, order_by="id", lock=True, db=connection
    )
    assert "FOR" not in on_sqlite


def test_an_update_sets_each_rows_fields_and_the_common_ones_and_no_other_row():
    first, second, untouched = (conversation_create().conversation for _ in range(3))
    stamp = first.updated_at.replace(year=2031)
    with mock.patch.object(SQLCompiler, "as_sql", side_effect=AssertionError("compiled")):
        rows_update(
            Conversation,
            [(first.pk, 7), (second.pk, 9)],
            fields=("last_seq",),
            common={"updated_at": stamp},
        )
    stored = {c.pk: (c.last_seq, c.updated_at) for c in Conversation.objects.all()}
    assert stored[first.pk] == (7, stamp)
    assert stored[second.pk] == (9, stamp)
    assert stored[untouched.pk] == (untouched.last_seq, untouched.updated_at)


def test_an_update_of_no_rows_runs_nothing():
    with CaptureQueriesContext(connection) as queries:
        rows_update(Conversation, [], fields=("last_seq",))
    assert len(queries) == 0


def test_an_insert_stores_what_bulk_create_stores_and_reads_the_keys_back():
    conversation = conversation_create().conversation
    ticket = Ticket(conversation=conversation, status=Ticket.Status.ROUTING)
    with mock.patch.object(SQLCompiler, "as_sql", side_effect=AssertionError("compiled")):
        (inserted,) = rows_insert([ticket])
    assert inserted is ticket
    assert ticket.pk is not None
    assert not ticket._state.adding
    assert ticket.created_at is not None  # auto_now_add, as save() sets it
    stored = Ticket.objects.get(pk=ticket.pk)
    fields = [f.attname for f in Ticket._meta.concrete_fields]
    assert [getattr(stored, name) for name in fields] == [getattr(ticket, name) for name in fields]
    assert stored.missing_fields == []  # a JSON default, as the ORM writes it


def test_many_rows_go_in_batches_each_row_with_its_own_key():
    """More rows than SQLite takes parameters for in one statement: batches, every key read
    back into its own instance."""
    conversation = conversation_create().conversation
    events = [
        ConversationEvent(
            conversation=conversation,
            seq=seq,
            type=ConversationEvent.Type.STATUS,
            payload={"n": seq, "text": "<b>é</b>"},
        )
        for seq in range(1, 451)
    ]
    rows_insert(events)
    stored = {e.pk: (e.seq, e.payload) for e in ConversationEvent.objects.all()}
    assert len(stored) == 450
    assert all(stored[e.pk] == (e.seq, e.payload) for e in events)


def test_a_related_object_saved_after_it_was_set_gives_its_key():
    conversation = conversation_create().conversation
    ticket = Ticket(conversation=conversation)
    message = Message(conversation=conversation, ticket=ticket, sender="customer", text="hi")
    rows_insert([ticket])
    rows_insert([message])
    assert Message.objects.get(pk=message.pk).ticket_id == ticket.pk


def test_a_row_save_writes_every_field_as_save_does_and_no_other_row():
    first, second = _tickets(["routing", "routing"])
    before = first.updated_at
    first.status = Ticket.Status.IN_REVIEW
    first.missing_fields = ["order_id"]
    with mock.patch.object(SQLCompiler, "as_sql", side_effect=AssertionError("compiled")):
        row_save(first)
    stored = Ticket.objects.get(pk=first.pk)
    assert (stored.status, stored.missing_fields) == ("in_review", ["order_id"])
    assert stored.updated_at == first.updated_at > before  # auto_now, on the instance too
    assert Ticket.objects.get(pk=second.pk).status == "routing"


def test_a_row_save_of_named_fields_writes_only_those():
    (ticket,) = _tickets(["routing"])
    ticket.status = Ticket.Status.QUEUED
    ticket.routing_lease_owner = "run-1"
    row_save(ticket, fields=["routing_lease_owner"])
    stored = Ticket.objects.get(pk=ticket.pk)
    assert (stored.status, stored.routing_lease_owner) == ("routing", "run-1")


def test_several_rows_go_to_postgresql_as_one_array_a_column_as_bulk_create_sends_them():
    """One statement for any number of rows there (planned once), each column cast to its
    type's array without its length; one row, and SQLite, take a VALUES list."""
    postgres = PostgresWrapper({"NAME": "x", "USER": "", "PASSWORD": "", "HOST": "", "PORT": ""})
    assert insert_statement(ConversationEvent, 0, db=postgres) == (
        'INSERT INTO "chat_conversationevent" ("conversation_id", "seq", "type", "payload", '
        '"created_at") SELECT * FROM UNNEST((%s)::uuid[], (%s)::bigint[], (%s)::varchar[], '
        '(%s)::jsonb[], (%s)::timestamp with time zone[]) RETURNING "id"'
    )
    assert insert_statement(ConversationEvent, 2, db=connection) == (
        'INSERT INTO "chat_conversationevent" ("conversation_id", "seq", "type", "payload", '
        '"created_at") VALUES (%s, %s, %s, %s, %s), (%s, %s, %s, %s, %s) RETURNING "id"'
    )
