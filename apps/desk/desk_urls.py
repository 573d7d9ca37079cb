"""The agent desk page at /desk/."""

from django.urls import path

from apps.desk import views

urlpatterns = [
    path("", views.desk_page, name="desk"),
]
