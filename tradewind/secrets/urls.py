"""Connections and Variables pages under `/t/<tenant_slug>/`."""

from django.urls import path

from tradewind.secrets.views import ConnectionsView, VariablesView

urlpatterns = [
    path("connections/", ConnectionsView.as_view(), name="tenant-connections"),
    path("variables/", VariablesView.as_view(), name="tenant-variables"),
]
