"""Queue sizes for Prometheus, counted in the database at each scrape (never kept in a
process, so every process reports the same figures and a restart loses nothing). Registered
with `/metrics` when the app is ready (apps/reports/apps.py)."""

from collections.abc import Iterable

from django.db.models import Count, Q
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from apps.pools.models import Pool
from apps.review.models import ReviewItem
from apps.tickets.models import Ticket


class QueueCollector:
    """Queue sizes counted in the database at each scrape (never kept in a process)."""

    def describe(self) -> Iterable[Metric]:
        # Names only: registering must not query the database.
        return [
            GaugeMetricFamily("supportdesk_pool_waiting_tickets", "", labels=["pool"]),
            GaugeMetricFamily("supportdesk_tickets_open", "", labels=["status", "pool"]),
            GaugeMetricFamily("supportdesk_review_items_open", "", labels=["kind", "reason"]),
        ]

    def collect(self) -> Iterable[Metric]:
        waiting = GaugeMetricFamily(
            "supportdesk_pool_waiting_tickets",
            "Tickets queued in each active pool and not yet assigned to an agent.",
            labels=["pool"],
        )
        for slug, count in (
            Pool.objects.filter(active=True)
            .annotate(waiting=Count("tickets", filter=Q(tickets__status=Ticket.Status.QUEUED)))
            .order_by("slug")
            .values_list("slug", "waiting")
        ):
            waiting.add_metric([slug], count)
        yield waiting

        tickets = GaugeMetricFamily(
            "supportdesk_tickets_open",
            "Tickets not resolved, by status and pool (empty pool: none chosen yet).",
            labels=["status", "pool"],
        )
        for row in (
            Ticket.objects.exclude(status=Ticket.Status.RESOLVED)
            .values("status", "pool__slug")
            .annotate(n=Count("id"))
            .order_by("status", "pool__slug")
        ):
            tickets.add_metric([row["status"], row["pool__slug"] or ""], row["n"])
        yield tickets

        review = GaugeMetricFamily(
            "supportdesk_review_items_open",
            "Open review queue items, by kind (review, audit) and reason.",
            labels=["kind", "reason"],
        )
        for row in (
            ReviewItem.objects.filter(status=ReviewItem.Status.OPEN)
            .values("kind", "reason")
            .annotate(n=Count("id"))
            .order_by("kind", "reason")
        ):
            review.add_metric([row["kind"], row["reason"]], row["n"])
        yield review
