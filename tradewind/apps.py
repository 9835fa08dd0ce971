from django.apps import AppConfig


class TradewindConfig(AppConfig):
    """The platform core as an app: its management commands (standalone) and the health endpoint."""

    name = "tradewind"
    verbose_name = "Tradewind"
