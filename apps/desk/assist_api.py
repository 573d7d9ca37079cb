"""Staff API of the agent's assistants: ask for an AI-drafted reply (docs/desk.md)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.desk.api import DraftSerializer
from apps.desk.assist import ticket_draft_create
from apps.desk.tasks import ticket_draft_write_enqueue
from apps.pools.selectors import ticket_get_visible


class TicketDraftCreateApi(APIView):
    """Draft a reply to a ticket with the LLM, for the agent to edit; it is never sent by itself."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        request=None,
        responses={
            202: DraftSerializer,
            404: OpenApiResponse(description="`not_found`: no such ticket, or not yours to see."),
            409: OpenApiResponse(
                description="`drafts_disabled` (no API key) or `conflict` (ticket resolved)."
            ),
            429: OpenApiResponse(description="`rate_limited`: too many drafts; see Retry-After."),
        },
    )
    def post(self, request: Request, ticket_id: int) -> Response:
        """Ask for a draft: answered at once with the draft `pending`; the model writes it in
        the background and the desk socket brings it `ready` (or `failed`, with its error)."""
        ticket = ticket_get_visible(user=request.user, ticket_id=ticket_id)
        draft = ticket_draft_create(ticket=ticket, actor=request.user)
        ticket_draft_write_enqueue(draft.pk)  # stored and committed: the task can find it
        return Response(DraftSerializer(draft).data, status=status.HTTP_202_ACCEPTED)
