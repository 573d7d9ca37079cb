"""Staff desk API under /api/v1/ (docs/desk.md)."""

from django.urls import path

from apps.desk import api

urlpatterns = [
    path("desk/", api.DeskOverviewApi.as_view(), name="desk-overview"),
    path("desk/presence/", api.DeskPresenceApi.as_view(), name="desk-presence"),
    path("tickets/", api.TicketListApi.as_view(), name="ticket-list"),
    path("tickets/<int:ticket_id>/", api.TicketDetailApi.as_view(), name="ticket-detail"),
    path("tickets/<int:ticket_id>/reply/", api.TicketReplyApi.as_view(), name="ticket-reply"),
    path("tickets/<int:ticket_id>/notes/", api.TicketNoteCreateApi.as_view(), name="ticket-notes"),
    path("tickets/<int:ticket_id>/claim/", api.TicketClaimApi.as_view(), name="ticket-claim"),
    path(
        "tickets/<int:ticket_id>/unassign/",
        api.TicketUnassignApi.as_view(),
        name="ticket-unassign",
    ),
    path("tickets/<int:ticket_id>/resolve/", api.TicketResolveApi.as_view(), name="ticket-resolve"),
    path("tickets/<int:ticket_id>/reopen/", api.TicketReopenApi.as_view(), name="ticket-reopen"),
    path("tickets/<int:ticket_id>/reroute/", api.TicketRerouteApi.as_view(), name="ticket-reroute"),
    path(
        "tickets/<int:ticket_id>/canned-replies/",
        api.TicketCannedReplyListApi.as_view(),
        name="ticket-canned-replies",
    ),
]
