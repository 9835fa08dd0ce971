"""URLs under `/t/<tenant_slug>/`."""

from django.urls import path

from tenants.views import MembersView, TenantHomeView

urlpatterns = [
    path("", TenantHomeView.as_view(), name="tenant-home"),
    path("members/", MembersView.as_view(), name="tenant-members"),
]
