from django.apps import AppConfig


class WorkersConfig(AppConfig):
    """Execution: executors, the Celery task, the task runner and its sandbox."""

    name = "workers"
    verbose_name = "Workers"
