"""Manager pages: the dashboard at /reports/ and the decision receipts behind each figure at
/reports/decisions/. Both render what the report API returns (the same selectors)."""

from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from rest_framework.exceptions import ValidationError

from apps.pools.models import Pool
from apps.reports.alert_selectors import alert_list_open
from apps.reports.filters import decision_drill_parse, report_filter_parse
from apps.reports.selectors import (
    ReportFilter,
    decision_trails,
    report_decision_list,
    user_can_view_reports,
)
from apps.reports.summary import report_summary, report_summary_data

PAGE_SIZE = 50


def _require_manager(request: HttpRequest) -> None:
    if not user_can_view_reports(request.user):
        raise PermissionDenied("Reports are for managers.")


def _invalid(request: HttpRequest, error: ValidationError) -> HttpResponse:
    return render(request, "reports/invalid.html", {"errors": error.detail}, status=400)


def _filter_context(filters: ReportFilter) -> dict[str, Any]:
    return {
        "filters": filters,
        "filter_params": filters.as_params(),
        "filter_query": urlencode(filters.as_params()),
        "pools": Pool.objects.order_by("name"),
    }


def _confusion_rows(confusion: dict[str, Any]) -> list[tuple[str, list[tuple[str, Any]]]]:
    """The matrix as rows of (truth, [(predicted, cell or None)]) for the template."""
    cells = {(cell["truth"], cell["predicted"]): cell for cell in confusion["cells"]}
    names = confusion["labels"]
    return [(truth, [(p, cells.get((truth, p))) for p in names]) for truth in names]


@login_required
def reports_dashboard(request: HttpRequest) -> HttpResponse:
    """The manager dashboard (docs/reports.md): cards, charts and drill-down links."""
    _require_manager(request)
    try:
        filters = report_filter_parse(request.GET)
    except ValidationError as error:
        return _invalid(request, error)
    data = report_summary_data(report_summary(filters=filters))
    chart_data = {
        "summary": data,
        "filters": filters.as_params(),
        "decisions_url": reverse("reports-decisions"),
    }
    return render(
        request,
        "reports/dashboard.html",
        {
            **_filter_context(filters),
            "summary": data,
            "chart_data": chart_data,
            "open_alerts": alert_list_open(),
            "confusion_rows": _confusion_rows(data["confusion"]),
        },
    )


@login_required
def reports_decisions(request: HttpRequest) -> HttpResponse:
    """Decision receipts behind one figure, newest first, with their tier trails."""
    _require_manager(request)
    try:
        filters = report_filter_parse(request.GET)
        drill = decision_drill_parse(request.GET)
    except ValidationError as error:
        return _invalid(request, error)
    decisions = report_decision_list(filters=filters, drill=drill)
    page = Paginator(decisions, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    trails = decision_trails(request_ids=(d.request_id for d in rows))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "reports/decisions.html",
        {
            **_filter_context(filters),
            "drill": drill.as_params(),
            "page": page,
            "receipts": [(d, trails.get(d.request_id, [])) for d in rows],
            "query": query.urlencode(),
        },
    )
