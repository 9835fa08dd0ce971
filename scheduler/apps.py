from django.apps import AppConfig


class SchedulerConfig(AppConfig):
    """DAG repositories and versions, DAG runs, task instances, XCom, assets, pools."""

    name = "scheduler"
    verbose_name = "Scheduler"
