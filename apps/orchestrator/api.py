"""Staff API of the orchestrator."""

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from apps.orchestrator.models import RoutingDecision, decision_columns
from apps.orchestrator.services import text_route_dry_run
from apps.pools.models import Intent, Pool


class DecisionSerializer(serializers.ModelSerializer[RoutingDecision]):
    pool: serializers.SlugRelatedField[Pool] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
    intent: serializers.SlugRelatedField[Intent] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
    # The column's public name (DECISION_COLUMN_FIELDS).
    final = serializers.BooleanField(source="ends_run", required=False)

    class Meta:
        model = RoutingDecision
        # The receipt's columns (apps/orchestrator/models.py); a dry run has no ticket and
        # its text is the caller's own.
        fields = decision_columns(without=("ticket", "ticket_pool", "trail", "input_minimised"))


class RouteDryRunThrottle(UserRateThrottle):
    """Dry runs per staff user: ROUTE_DRY_RUN_RATE, read when a request comes (each run may
    cost up to four model calls)."""

    scope = "route_dry_run"

    def get_rate(self) -> str:
        rate: str = settings.ROUTE_DRY_RUN_RATE
        return rate


class RouteDryRunApi(APIView):
    """Route a text without creating a ticket (for integrations and prompt checks)."""

    permission_classes = [IsAdminUser]
    throttle_classes = [RouteDryRunThrottle]

    class InputSerializer(serializers.Serializer[dict[str, str]]):
        text = serializers.CharField(
            max_length=settings.ROUTER_MAX_INPUT_CHARS, trim_whitespace=False
        )

    class OutputSerializer(serializers.Serializer[dict[str, object]]):
        action = serializers.ChoiceField(choices=["route", "clarify", "review"])
        pool = serializers.CharField(allow_null=True)
        review_reason = serializers.CharField(allow_blank=True)
        missing_fields = serializers.ListField(child=serializers.CharField())
        injection_suspected = serializers.BooleanField()
        decision = DecisionSerializer()
        trail = DecisionSerializer(many=True)

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request: Request) -> Response:
        """The deciding decision and its tier trail, recorded as a dry run; no cache write."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = text_route_dry_run(text=serializer.validated_data["text"])
        outcome = result.outcome
        data: dict[str, object] = {
            "action": outcome.action,
            "pool": outcome.pool.slug if outcome.pool else None,
            "review_reason": outcome.review_reason,
            "missing_fields": outcome.missing_fields,
            "injection_suspected": outcome.injection,
            "decision": result.decisions[-1],
            "trail": result.decisions,
        }
        return Response(self.OutputSerializer(data).data)
