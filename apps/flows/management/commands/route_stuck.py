"""Route tickets left in `routing` (e.g. the server stopped mid-way); `make run` calls it."""

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.flows.routing import ticket_route
from apps.orchestrator.services import tickets_stuck_requeue
from apps.tickets.models import Ticket


class Command(BaseCommand):
    help = "Route every ticket that has stayed in `routing` longer than --older-than seconds."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=float, default=0.0, help="seconds")

    def handle(self, *args: Any, **options: Any) -> None:
        ids = tickets_stuck_requeue(older_than=timedelta(seconds=options["older_than"]))
        for ticket in Ticket.objects.filter(pk__in=ids):
            ticket_route(ticket=ticket)
        if ids:
            self.stdout.write(f"routed {len(ids)} ticket(s) left in routing")
