"""ASGI entry point: Django over HTTP (websocket routes join here when live views arrive)."""

import os

from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradewind.settings")

application = ProtocolTypeRouter({"http": get_asgi_application()})
