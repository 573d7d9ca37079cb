"""Streamed CSV exports of decision receipts and tickets: rows are read in chunks
(`.iterator()`, or `.aiterator()` under ASGI) and written as they go, so a month of data never
sits in memory.

Under ASGI Django buffers a synchronous iterator whole before sending it, so there the rows come
from an asynchronous generator; under WSGI (and the test client) from a synchronous one.
"""

import csv
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from itertools import islice
from typing import Any

from asgiref.sync import sync_to_async
from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from apps.orchestrator.models import DECISION_COLUMN_FIELDS, RoutingDecision, decision_columns
from apps.reports.selectors import decision_trails
from apps.tickets.models import Ticket

CHUNK = 2000
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection): customer
# text must never do that, so such cells get a leading apostrophe.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# The receipt's columns (apps/orchestrator/models.py), in their order: tools read them by position.
DECISION_COLUMNS = decision_columns(without=("model_version", "rule"))

TICKET_COLUMNS = [
    "id",
    "created_at",
    "status",
    "pool",
    "final_tier",
    "final_confidence",
    "decisions",
    "routing_cost_usd",
    "sla_due_at",
    "first_response_at",
    "sla_breached_at",
    "resolved_at",
]


def csv_cell(value: Any) -> str:
    """One cell: empty for None, ISO times, exact decimals, text defused against formulas."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    text = str(value)
    if isinstance(value, str) and text.startswith(FORMULA_START):
        return "'" + text
    return text


class _Echo:
    """A file-like object whose write returns the line instead of storing it."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """CSV text, one line at a time."""
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([csv_cell(value) for value in row])


async def csv_lines_async(
    header: Sequence[str], rows: AsyncIterable[Sequence[Any]]
) -> AsyncIterator[str]:
    """CSV text, one line at a time, from rows that arrive asynchronously."""
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    async for row in rows:
        yield writer.writerow([csv_cell(value) for value in row])


def csv_response(
    filename: str,
    header: Sequence[str],
    rows: Iterable[Sequence[Any]] | AsyncIterable[Sequence[Any]],
) -> StreamingHttpResponse:
    """A streamed CSV download."""
    lines: Iterator[str] | AsyncIterator[str]
    if isinstance(rows, AsyncIterable):
        lines = csv_lines_async(header, rows)
    else:
        lines = csv_lines(header, rows)
    response = StreamingHttpResponse(lines, content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _trail_text(trail: list[RoutingDecision]) -> str:
    return " > ".join(f"{d.tier}:{d.action}" for d in trail)


def _decision_csv_cells(d: RoutingDecision, trail: list[RoutingDecision]) -> dict[str, Any]:
    """The columns whose cell is not the field's own value."""
    return {
        "id": d.pk,
        "ticket": d.ticket_id,
        "ticket_pool": d.ticket.pool.slug if d.ticket and d.ticket.pool else None,
        "trail": _trail_text(trail),
        "pool": d.pool.slug if d.pool else None,
        "intent": d.intent.slug if d.intent else None,
        "prompt_version": d.prompt_version_id,
    }


def _decision_csv_row(d: RoutingDecision, trail: list[RoutingDecision]) -> list[Any]:
    cells = _decision_csv_cells(d, trail)
    return [
        cells[c] if c in cells else getattr(d, DECISION_COLUMN_FIELDS.get(c, c))
        for c in DECISION_COLUMNS
    ]


def decision_rows(decisions: QuerySet[RoutingDecision]) -> Iterator[list[Any]]:
    """Decision receipts as CSV rows, with each one's tier trail (one query per chunk)."""
    iterator = decisions.iterator(chunk_size=CHUNK)
    while chunk := list(islice(iterator, CHUNK)):
        trails = decision_trails(request_ids=(d.request_id for d in chunk))
        for d in chunk:
            yield _decision_csv_row(d, trails.get(d.request_id, []))


async def decision_rows_async(decisions: QuerySet[RoutingDecision]) -> AsyncIterator[list[Any]]:
    """`decision_rows` for ASGI: the same rows, read with `.aiterator()`."""
    chunk: list[RoutingDecision] = []

    async def flush() -> list[list[Any]]:
        trails = await sync_to_async(decision_trails)(request_ids=[d.request_id for d in chunk])
        return [_decision_csv_row(d, trails.get(d.request_id, [])) for d in chunk]

    async for decision in decisions.aiterator(chunk_size=CHUNK):
        chunk.append(decision)
        if len(chunk) == CHUNK:
            for row in await flush():
                yield row
            chunk = []
    if chunk:
        for row in await flush():
            yield row


def _ticket_row(t: Ticket) -> list[Any]:
    return [
        t.pk,
        t.created_at,
        t.status,
        t.pool.slug if t.pool else None,
        getattr(t, "outcome_tier", None),
        getattr(t, "outcome_confidence", None),
        getattr(t, "decision_count", None) or 0,
        getattr(t, "routing_cost_usd", None) or Decimal(0),
        t.sla_due_at,
        t.first_response_at,
        t.sla_breached_at,
        t.resolved_at,
    ]


def ticket_rows(tickets: QuerySet[Ticket]) -> Iterator[list[Any]]:
    """Tickets (annotated by `report_ticket_list`) as CSV rows."""
    for ticket in tickets.iterator(chunk_size=CHUNK):
        yield _ticket_row(ticket)


async def ticket_rows_async(tickets: QuerySet[Ticket]) -> AsyncIterator[list[Any]]:
    """`ticket_rows` for ASGI, read with `.aiterator()`."""
    async for ticket in tickets.aiterator(chunk_size=CHUNK):
        yield _ticket_row(ticket)
