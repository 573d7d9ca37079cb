"""The manager pages at /reports/."""

from django.urls import path

from apps.reports import views

urlpatterns = [
    path("", views.reports_dashboard, name="reports"),
    path("decisions/", views.reports_decisions, name="reports-decisions"),
]
