"""Websocket routes of the live streams (tradewind/asgi.py wraps them in the origin check and auth)."""

from django.urls import re_path

from tradewind.live.consumers import DagEventsConsumer, TenantEventsConsumer, UnknownStreamConsumer

websocket_urlpatterns = [
    re_path(r"^t/(?P<slug>[^/]+)/ws/events/$", TenantEventsConsumer.as_asgi()),
    re_path(r"^t/(?P<slug>[^/]+)/ws/dags/(?P<dag_id>[^/]+)/$", DagEventsConsumer.as_asgi()),
    re_path(r"", UnknownStreamConsumer.as_asgi()),
]
