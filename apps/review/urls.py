"""Review queue API under /api/v1/."""

from django.urls import path

from apps.review import api

urlpatterns = [
    path("review/", api.ReviewItemListApi.as_view(), name="review-list"),
    path(
        "review/<int:item_id>/resolve/", api.ReviewItemResolveApi.as_view(), name="review-resolve"
    ),
]
