from django.urls import path

from apps.orchestrator import api

urlpatterns = [path("route/", api.RouteDryRunApi.as_view(), name="route-dry-run")]
