"""Top-level URLs: accounts, health, the admin, and everything of a tenant under `/t/<tenant_slug>/`."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from tradewind.health import health

tenant_api = [
    path("", include("tenants.api.urls")),
    path("", include("tradewind.accounts.api.urls")),
    path("", include("tradewind.secrets.api.urls")),
    path("", include("tradewind.audit.api.urls")),
    path("", include("scheduler.api.urls")),
]

tenant_urls = [
    path("", include("tenants.urls")),
    path("", include("tradewind.accounts.tenant_urls")),
    path("", include("tradewind.secrets.urls")),
    path("", include("frontend.urls")),
    path("api/v1/", include(tenant_api)),
]

urlpatterns = [
    path("", include("tradewind.accounts.urls")),
    path("health", health, name="health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("admin/", admin.site.urls),
    path("t/<slug:tenant_slug>/", include(tenant_urls)),
]
