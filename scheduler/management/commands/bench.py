"""`manage.py bench`: measure a workload end to end on the real scheduler and executor."""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from scheduler.benchmark import WORKLOADS, run_bench


class Command(BaseCommand):
    help = (
        "Create a bench tenant, deploy a workload as a DAG repository, start the real scheduler and executor "
        "(Celery workers as separate processes), trigger one run, wait for it and print figures from the "
        "database timestamps. Workloads: " + ", ".join(WORKLOADS) + "."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--workload", choices=WORKLOADS)
        source.add_argument("--dag-file", type=Path, help="any Airflow-style DAG file defining one DAG")
        parser.add_argument("--executor", choices=["local", "celery"], default="local")
        parser.add_argument("--workers", type=int, default=1, help="Celery worker processes")
        parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the run")
        parser.add_argument("--json", action="store_true", help="print exactly one JSON object")

    def handle(self, *args: object, **options: object) -> None:
        dag_file = options["dag_file"]
        if dag_file is not None and not dag_file.is_file():
            raise CommandError(f"no such DAG file: {dag_file}")
        if "TRADEWIND_DEBUG" not in os.environ:
            # Measured as deployed, like the scheduler and workers it starts: debug mode formats and keeps
            # every SQL query this process sends (uploading a repository, triggering the run).
            settings.DEBUG = False
        try:
            figures = run_bench(
                workload=options["workload"],
                dag_file=dag_file,
                executor=options["executor"],
                workers=options["workers"],
                timeout_s=options["timeout"],
            )
        except RuntimeError as error:
            raise CommandError(str(error)) from error
        if options["json"]:
            self.stdout.write(json.dumps(figures))
            return
        width = max(len(key) for key in figures)
        for key, value in figures.items():
            self.stdout.write(f"{key.ljust(width)}  {value}")
