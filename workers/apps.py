from django.apps import AppConfig


class WorkersConfig(AppConfig):
    """Execution: executors, the Celery task, the task runner and its sandbox."""

    name = "workers"
    verbose_name = "Workers"

    def ready(self) -> None:
        from django.conf import settings

        from workers import sandbox

        sandbox.configure(uid_base=settings.TRADEWIND_SANDBOX_UID_BASE)
