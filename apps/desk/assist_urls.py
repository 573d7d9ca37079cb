"""URLs of the agent's assistants (included under /api/v1/)."""

from django.urls import URLPattern, URLResolver, path

from apps.desk.assist_api import TicketDraftCreateApi

urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "tickets/<int:ticket_id>/draft/", TicketDraftCreateApi.as_view(), name="ticket-draft-create"
    )
]
