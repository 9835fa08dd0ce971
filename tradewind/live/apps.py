from django.apps import AppConfig


class LiveConfig(AppConfig):
    """Live UI events: scheduler events fanned out to channel layer groups, and the websocket consumers."""

    name = "tradewind.live"
    label = "live"
    verbose_name = "Live events"

    def ready(self) -> None:
        from tradewind.live import fanout

        # Every process that changes state (web, scheduler, worker, triggerer) forwards its own events.
        fanout.install()
