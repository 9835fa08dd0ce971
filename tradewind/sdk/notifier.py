"""BaseNotifier: a callback object that renders its template fields with the task's context, then
`notify(context)`s (Airflow 2.6+ notifiers; `on_failure_callback=MyNotifier(message="{{ ti.task_id }} failed")`).
"""

from __future__ import annotations

from typing import Any

from tradewind.sdk.logging_mixin import LoggingMixin
from tradewind.sdk.templater import Templater


class BaseNotifier(LoggingMixin, Templater):
    """Subclasses set `template_fields` and implement `notify(context)`. A notifier that raises is logged,
    not fatal: a failed notification does not change the task's outcome, as in Airflow."""

    template_fields = ()
    template_ext = ()

    def __init__(self) -> None:
        super().__init__()
        self.resolve_template_files()

    def notify(self, context: Any) -> None:
        """Send the notification."""
        raise NotImplementedError(f"{type(self).__name__} must implement notify(context)")

    def _update_context(self, context: Any) -> Any:
        """Hook: add what `notify` needs to the context before the fields are rendered."""
        return context

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Render the template fields with the environment of the context's DAG."""
        super().render_template_fields(context, jinja_env or self.get_template_env(dag=context.get("dag")))

    def __call__(self, *args: Any) -> None:
        """Called as a callback with the context (Airflow 2's SLA-miss callback passes five arguments: dag,
        task_list, blocking_task_list, slas, blocking_tis)."""
        if len(args) == 1:
            context = args[0]
        else:
            names = ("dag", "task_list", "blocking_task_list", "slas", "blocking_tis")
            context = dict(zip(names, args, strict=False))
        context = self._update_context(context)
        self.render_template_fields(context)
        try:
            self.notify(context)
        except Exception as exc:
            self.log.exception("Failed to send notification: %s", exc)
