from django.urls import path

from apps.widget import api

urlpatterns = [
    path("conversations/", api.ConversationCreateApi.as_view(), name="conversation-create"),
    path(
        "conversations/<uuid:conversation_id>/",
        api.ConversationDetailApi.as_view(),
        name="conversation-detail",
    ),
    path(
        "conversations/<uuid:conversation_id>/messages/",
        api.ConversationMessageCreateApi.as_view(),
        name="conversation-message-create",
    ),
    path(
        "conversations/<uuid:conversation_id>/events/",
        api.ConversationEventListApi.as_view(),
        name="conversation-event-list",
    ),
    path(
        "conversations/<uuid:conversation_id>/handoff/",
        api.ConversationHandoffApi.as_view(),
        name="conversation-handoff",
    ),
]
