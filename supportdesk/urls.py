"""Top-level URLs: demo page, admin, API v1, OpenAPI schema and docs, health."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.chat.views import demo_page
from apps.core.views import healthz, metrics

urlpatterns = [
    path("", demo_page, name="demo"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("apps.widget.urls")),
    path("api/v1/", include("apps.orchestrator.urls")),
    path("api/v1/", include("apps.desk.urls")),
    path("api/v1/", include("apps.desk.assist_urls")),
    path("api/v1/", include("apps.widget.attachment_urls")),
    path("api/v1/", include("apps.review.urls")),
    path("api/v1/", include("apps.reports.urls")),
    path("desk/", include("apps.desk.desk_urls")),
    path("reports/", include("apps.reports.page_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its script as a file: the page needs no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
]

# A URL no view serves: the API's error shape under /api/, Django's page elsewhere.
handler404 = "apps.core.views.not_found"
