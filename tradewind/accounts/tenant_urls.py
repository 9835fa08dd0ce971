"""The API tokens page under `/t/<tenant_slug>/`."""

from django.urls import path

from tradewind.accounts.views import TokensView

urlpatterns = [
    path("tokens/", TokensView.as_view(), name="tenant-tokens"),
]
