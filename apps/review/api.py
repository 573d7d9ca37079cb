"""Staff API of the review queue: `GET review/`, `POST review/{id}/resolve/`."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission, IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import PaginatedApi, errors, query_param
from apps.core.errors import NotFound
from apps.pools.models import Pool
from apps.review.models import ReviewItem
from apps.review.services import review_item_resolve, user_can_review


class IsReviewer(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return user_can_review(request.user)


class ReviewItemSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    ticket = serializers.IntegerField(source="ticket_id")
    kind = serializers.CharField()
    reason = serializers.CharField()
    # The validation tier flagged the ticket's text as a suspected prompt injection.
    injection_suspected = serializers.BooleanField(source="ticket.injection_suspected")
    tier = serializers.CharField()
    suggested_pool = serializers.CharField(
        source="suggested_pool.slug", allow_null=True, default=None
    )
    candidates = serializers.JSONField()
    text = serializers.CharField(source="decision.redacted", default="")
    status = serializers.CharField()
    verdict = serializers.CharField()
    verdict_pool = serializers.CharField(source="verdict_pool.slug", allow_null=True, default=None)
    note = serializers.CharField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class ReviewItemListApi(PaginatedApi):
    permission_classes = [IsAdminUser, IsReviewer]

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=ReviewItem.Status.values),
            OpenApiParameter("kind", str, enum=ReviewItem.Kind.values),
            OpenApiParameter("reason", str, enum=ReviewItem.Reason.values),
        ],
        responses=ReviewItemSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        """Review items, oldest first (reviewers)."""
        items = ReviewItem.objects.select_related(
            "ticket", "suggested_pool", "verdict_pool", "decision"
        ).order_by("created_at", "id")
        for field, choices in (
            ("status", ReviewItem.Status.values),
            ("kind", ReviewItem.Kind.values),
            ("reason", ReviewItem.Reason.values),
        ):
            value = query_param(request, field, serializers.ChoiceField(choices=choices))
            if value is not None:
                items = items.filter(**{field: value})
        return self.page_response(request, items, ReviewItemSerializer)


class ReviewItemResolveApi(APIView):
    permission_classes = [IsAdminUser, IsReviewer]

    class InputSerializer(serializers.Serializer[dict[str, Any]]):
        verdict = serializers.ChoiceField(choices=ReviewItem.Verdict.values, required=False)
        pool = serializers.SlugField(required=False, allow_null=True)
        note = serializers.CharField(required=False, allow_blank=True, max_length=500)

    @extend_schema(request=InputSerializer, responses={200: ReviewItemSerializer, **errors(409)})
    def post(self, request: Request, item_id: int) -> Response:
        """Resolve an item: `{"pool"}` routes there; `{"verdict":"confirmed"}` takes the
        suggestion; `{"verdict":"no_pool","note"}` closes it without a pool."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = ReviewItem.objects.filter(pk=item_id).first()
        if item is None:
            raise NotFound("No such review item.")
        data = serializer.validated_data
        pool = None
        if data.get("pool"):
            pool = Pool.objects.filter(slug=data["pool"]).first()
            if pool is None:
                raise NotFound(f"No pool {data['pool']!r}.")
        verdict = data.get("verdict") or (
            ReviewItem.Verdict.ROUTED if pool else ReviewItem.Verdict.CONFIRMED
        )
        resolved = review_item_resolve(
            item=item, reviewer=request.user, verdict=verdict, pool=pool, note=data.get("note", "")
        )
        return Response(ReviewItemSerializer(resolved).data)
