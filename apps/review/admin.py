"""The review queue in the Django admin, and read-only routing labels.

Reviewers (the `review.resolve_reviewitem` permission) confirm the suggested pool, route to a
chosen pool, or mark "other / no pool" with a note — on one item or many. Each action calls
`review_item_resolve`, which routes the ticket, tells the customer and records the verdict.
"""

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

from apps.core.admin import ReadOnlyAdmin
from apps.pools.models import Pool
from apps.review import prompt_admin  # noqa: F401  (registers the prompt A/B tests)
from apps.review.models import ReviewItem, RoutingLabel
from apps.review.selectors import review_queue_stats, routing_accuracy
from apps.review.services import review_items_resolve
from apps.review.training import admin as training_admin  # noqa: F401  (registers the model-version admins)

TEXT_PREVIEW_CHARS = 160
ACCURACY_WINDOW = timedelta(days=30)


@admin.register(RoutingLabel)
class RoutingLabelAdmin(ReadOnlyAdmin):
    list_display = ["ticket", "source", "previous_pool", "pool", "author", "created_at"]
    list_filter = ["source", "pool"]
    search_fields = ["text", "reason"]
    date_hierarchy = "created_at"


class AgeFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"
    BANDS = {
        "1h": ("Under an hour", None, timedelta(hours=1)),
        "1d": ("1 to 24 hours", timedelta(hours=1), timedelta(days=1)),
        "old": ("Over a day", timedelta(days=1), None),
    }

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _, _) in self.BANDS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        band = self.BANDS.get(self.value() or "")
        if band is None:
            return queryset
        _label, older_than, younger_than = band
        now = timezone.now()
        if older_than is not None:
            queryset = queryset.filter(created_at__lte=now - older_than)
        if younger_than is not None:
            queryset = queryset.filter(created_at__gt=now - younger_than)
        return queryset


class PoolChoiceForm(forms.Form):
    pool = forms.ModelChoiceField(queryset=Pool.objects.filter(active=True), label="Route to")


class NoPoolForm(forms.Form):
    note = forms.CharField(
        max_length=500, widget=forms.Textarea(attrs={"rows": 3}), label="Why no pool fits"
    )


@admin.register(ReviewItem)
class ReviewItemAdmin(admin.ModelAdmin[ReviewItem]):
    """The review queue: oldest first, open items by default."""

    list_display = [
        "id",
        "age",
        "kind",
        "reason",
        "injection_flag",
        "suggested_pool",
        "candidate_scores",
        "customer_text",
        "ticket_status",
        "status",
    ]
    list_filter = ["status", "kind", "reason", "suggested_pool", AgeFilter, "tier"]
    search_fields = ["decision__redacted", "=ticket__id", "note"]
    ordering = ["created_at", "id"]
    list_select_related = ["ticket", "suggested_pool", "decision"]
    actions = ["confirm_suggested", "route_to_pool", "mark_no_pool"]
    readonly_fields = [
        "ticket",
        "kind",
        "reason",
        "injection_flag",
        "tier",
        "decision",
        "suggested_pool",
        "candidates",
        "customer_text",
        "status",
        "verdict",
        "verdict_pool",
        "note",
        "resolved_by",
        "resolved_at",
        "created_at",
    ]
    change_list_template = "admin/review/reviewitem/change_list.html"

    # -- what a reviewer sees ---------------------------------------------------------------
    @admin.display(description="age", ordering="created_at")
    def age(self, item: ReviewItem) -> str:
        return timesince(item.created_at)

    @admin.display(description="injection suspected")
    def injection_flag(self, item: ReviewItem) -> str:
        # The validation tier's flag on the ticket: its text tried to steer routing or the model.
        if not item.ticket.injection_suspected:
            return "—"
        return format_html(
            '<strong class="review-flag" data-testid="injection-flag">{}</strong>',
            "injection suspected",
        )

    @admin.display(description="candidates")
    def candidate_scores(self, item: ReviewItem) -> str:
        return ", ".join(f"{c['pool']} {c['score']:.2f}" for c in item.candidates[:3]) or "—"

    @admin.display(description="customer's text")
    def customer_text(self, item: ReviewItem) -> str:
        text = item.decision.redacted if item.decision else ""
        if len(text) > TEXT_PREVIEW_CHARS:
            text = text[:TEXT_PREVIEW_CHARS] + "…"
        # format_html escapes the customer's text: it is shown, never interpreted.
        return format_html('<span class="review-text">{}</span>', text or "—")

    @admin.display(description="ticket")
    def ticket_status(self, item: ReviewItem) -> str:
        return f"#{item.ticket_id} {item.ticket.get_status_display()}"

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Open items first: a reviewer lands on the work, not on the history.
        if "status__exact" not in request.GET and not request.GET.get("_changelist_filters"):
            query = request.GET.copy()
            query["status__exact"] = ReviewItem.Status.OPEN
            request.GET = query  # type: ignore[assignment]  # a mutable copy, as Django's own views do
            request.META["QUERY_STRING"] = query.urlencode()
        stats = review_queue_stats()
        context = {
            **(extra_context or {}),
            # Tickets waiting for a person; audit samples hold no ticket and are counted apart.
            "open_count": stats.kinds["review"].open,
            "audit_count": stats.kinds["audit"].open,
            # Accuracy of automatic routing, from resolved audit samples only (unbiased).
            "accuracy": routing_accuracy(since=timezone.now() - ACCURACY_WINDOW),
            "accuracy_days": ACCURACY_WINDOW.days,
        }
        return super().changelist_view(request, extra_context=context)

    # -- permissions ------------------------------------------------------------------------
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # items come from routing and audit sampling

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # resolved through the actions; nothing is edited by hand

    def has_resolve_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("review.resolve_reviewitem"))

    # -- actions ----------------------------------------------------------------------------
    def _report(self, request: HttpRequest, done: list[Any], refused: list[Any]) -> None:
        if done:
            self.message_user(request, f"Resolved {len(done)} item(s).", messages.SUCCESS)
        for item, why in refused:
            self.message_user(request, f"Item {item.pk}: {why}", messages.WARNING)

    @admin.action(description="Confirm the suggested pool", permissions=["resolve"])
    def confirm_suggested(self, request: HttpRequest, queryset: QuerySet[ReviewItem]) -> None:
        done, refused = review_items_resolve(
            items=list(queryset), reviewer=request.user, verdict=ReviewItem.Verdict.CONFIRMED
        )
        self._report(request, done, refused)

    @admin.action(description="Route to a chosen pool…", permissions=["resolve"])
    def route_to_pool(
        self, request: HttpRequest, queryset: QuerySet[ReviewItem]
    ) -> TemplateResponse | None:
        form = PoolChoiceForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            done, refused = review_items_resolve(
                items=list(queryset),
                reviewer=request.user,
                verdict=ReviewItem.Verdict.ROUTED,
                pool=form.cleaned_data["pool"],
            )
            self._report(request, done, refused)
            return None
        return self._intermediate(request, queryset, form, "route_to_pool", "Route to a pool")

    @admin.action(description="Mark as other / no pool…", permissions=["resolve"])
    def mark_no_pool(
        self, request: HttpRequest, queryset: QuerySet[ReviewItem]
    ) -> TemplateResponse | None:
        form = NoPoolForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            done, refused = review_items_resolve(
                items=list(queryset),
                reviewer=request.user,
                verdict=ReviewItem.Verdict.NO_POOL,
                note=form.cleaned_data["note"],
            )
            self._report(request, done, refused)
            return None
        return self._intermediate(request, queryset, form, "mark_no_pool", "Other / no pool")

    def _intermediate(
        self,
        request: HttpRequest,
        queryset: QuerySet[ReviewItem],
        form: forms.Form,
        action: str,
        title: str,
    ) -> TemplateResponse:
        return TemplateResponse(
            request,
            "admin/review/reviewitem/action_form.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "items": queryset,
                "form": form,
                "action": action,
                "opts": self.model._meta,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            },
        )
