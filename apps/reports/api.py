"""Manager API: `GET reports/summary/`, `GET decisions/`, `GET decisions/export/` and
`GET reports/tickets/export/` (docs/reports.md)."""

import json
from typing import Any

from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import PaginatedApi
from apps.orchestrator.models import RoutingDecision, decision_columns
from apps.reports.exports import (
    DECISION_COLUMNS,
    TICKET_COLUMNS,
    csv_response,
    decision_rows,
    decision_rows_async,
    ticket_rows,
    ticket_rows_async,
)
from apps.reports.filters import (
    DecisionDrillSerializer,
    ReportFilterSerializer,
    decision_drill_parse,
    report_filter_parse,
)
from apps.reports.selectors import (
    report_decision_list,
    report_ticket_list,
    user_can_view_reports,
)
from apps.reports.summary import report_summary, report_summary_data


class CanViewReports(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return user_can_view_reports(request.user)


class CsvRenderer(BaseRenderer):
    """Lets a client ask for `Accept: text/csv`; the views stream the body themselves."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Any = None,
    ) -> bytes:
        # Only errors reach a renderer here.
        return json.dumps(data).encode()


def _under_asgi(request: Request) -> bool:
    # Under ASGI a streamed body must come from an async iterator, or Django buffers it whole.
    return isinstance(request._request, ASGIRequest)


CSV_RESPONSE = {(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV")}


class ReportSummaryApi(APIView):
    """Every figure of the manager dashboard, from the same selector as the page."""

    permission_classes = [CanViewReports]

    class OutputSerializer(serializers.Serializer[dict[str, Any]]):
        # Sections mirror apps.reports.summary.report_summary (documented in docs/reports.md).
        from_ = serializers.DateField()
        to = serializers.DateField()
        pool = serializers.CharField(allow_null=True)
        generated_at = serializers.DateTimeField()
        tickets = serializers.DictField()
        routing = serializers.DictField()
        cost = serializers.DictField()
        confidence = serializers.DictField()
        latency = serializers.ListField(child=serializers.DictField())
        review_queue = serializers.DictField()
        accuracy = serializers.DictField()
        confusion = serializers.DictField()
        sla = serializers.DictField()

        def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
            fields = super().get_fields()
            fields["from"] = fields.pop("from_")
            return fields

    @extend_schema(parameters=[ReportFilterSerializer], responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        """Figures for `from`..`to` (dates, both included) and optionally one `pool`."""
        filters = report_filter_parse(request.query_params)
        return Response(report_summary_data(report_summary(filters=filters)))


class DecisionListApi(PaginatedApi):
    """Decision receipts of real tickets, newest first, filtered like the dashboard's drill-down."""

    permission_classes = [CanViewReports]

    class OutputSerializer(serializers.ModelSerializer[RoutingDecision]):
        pool: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
            slug_field="slug", read_only=True, allow_null=True
        )
        intent: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
            slug_field="slug", read_only=True, allow_null=True
        )
        ticket_pool = serializers.CharField(
            source="ticket.pool.slug", default=None, allow_null=True
        )
        # The columns' public names (DECISION_COLUMN_FIELDS).
        final = serializers.BooleanField(source="ends_run", required=False)
        input_minimised = serializers.CharField(source="redacted", required=False, allow_blank=True)

        class Meta:
            model = RoutingDecision
            # The receipt's columns (apps/orchestrator/models.py); the trail is the CSV's.
            fields = decision_columns(without=("trail",))

    @extend_schema(
        parameters=[ReportFilterSerializer, DecisionDrillSerializer],
        responses=OutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        """Filters: `from`, `to`, `pool` (the ticket's), `tier`, `ticket` and the drill-down
        parameters the summary gives each figure; paginated with `limit`/`offset`."""
        decisions = report_decision_list(
            filters=report_filter_parse(request.query_params),
            drill=decision_drill_parse(request.query_params),
        )
        return self.page_response(request, decisions, self.OutputSerializer)


class DecisionExportApi(APIView):
    """The same decisions as `decisions/`, as a streamed CSV (all rows, no pagination)."""

    permission_classes = [CanViewReports]
    renderer_classes = [JSONRenderer, CsvRenderer]

    @extend_schema(
        parameters=[ReportFilterSerializer, DecisionDrillSerializer], responses=CSV_RESPONSE
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        """Decision receipts as CSV, one row per decision, with each one's tier trail."""
        filters = report_filter_parse(request.query_params)
        decisions = report_decision_list(
            filters=filters, drill=decision_drill_parse(request.query_params)
        )
        name = f"decisions-{filters.start}-{filters.end}.csv"
        rows = decision_rows_async(decisions) if _under_asgi(request) else decision_rows(decisions)
        return csv_response(name, DECISION_COLUMNS, rows)


class TicketExportApi(APIView):
    """Tickets created in the period (pool filter) as a streamed CSV."""

    permission_classes = [CanViewReports]
    renderer_classes = [JSONRenderer, CsvRenderer]

    @extend_schema(parameters=[ReportFilterSerializer], responses=CSV_RESPONSE)
    def get(self, request: Request) -> StreamingHttpResponse:
        """Tickets with status, pool, SLA times, final tier and routing cost, as CSV."""
        filters = report_filter_parse(request.query_params)
        name = f"tickets-{filters.start}-{filters.end}.csv"
        tickets = report_ticket_list(filters=filters)
        rows = ticket_rows_async(tickets) if _under_asgi(request) else ticket_rows(tickets)
        return csv_response(name, TICKET_COLUMNS, rows)
