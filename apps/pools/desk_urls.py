"""The agent desk page at /desk/."""

from django.urls import path

from apps.pools import views

urlpatterns = [
    path("", views.desk_page, name="desk"),
]
