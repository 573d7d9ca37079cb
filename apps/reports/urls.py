"""Report API under /api/v1/."""

from django.urls import path

from apps.reports import api

urlpatterns = [
    path("reports/summary/", api.ReportSummaryApi.as_view(), name="reports-summary"),
    path("reports/tickets/export/", api.TicketExportApi.as_view(), name="reports-tickets-export"),
    path("decisions/", api.DecisionListApi.as_view(), name="decisions-list"),
    path("decisions/export/", api.DecisionExportApi.as_view(), name="decisions-export"),
]
