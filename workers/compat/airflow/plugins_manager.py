"""`airflow.plugins_manager`: `AirflowPlugin`, so that modules declaring a plugin import."""

from __future__ import annotations

from typing import Any


class AirflowPlugin:
    """Base of an Airflow plugin, inert on Tradewind: plugins are not loaded, so the macros, views, links,
    timetables and listeners a subclass lists are never registered. Every attribute Airflow 1–3 documents
    is here with an empty default, so subclasses declare them as in Airflow."""

    name: str | None = None
    source: Any = None
    macros: list[Any] = []
    # Airflow 1 only: Airflow 2 stopped importing operators, sensors and hooks through plugins.
    operators: list[Any] = []
    sensors: list[Any] = []
    hooks: list[Any] = []
    executors: list[Any] = []
    # Airflow 2's web UI (Flask) and Airflow 3's (FastAPI, React).
    admin_views: list[Any] = []
    menu_links: list[Any] = []
    flask_blueprints: list[Any] = []
    appbuilder_views: list[Any] = []
    appbuilder_menu_items: list[Any] = []
    fastapi_apps: list[Any] = []
    fastapi_root_middlewares: list[Any] = []
    external_views: list[Any] = []
    react_apps: list[Any] = []
    global_operator_extra_links: list[Any] = []
    operator_extra_links: list[Any] = []
    timetables: list[Any] = []
    listeners: list[Any] = []
    ti_deps: list[Any] = []
    hook_lineage_readers: list[Any] = []
    priority_weight_strategies: list[Any] = []

    @classmethod
    def validate(cls) -> None:
        """As Airflow: a plugin needs a name."""
        if not cls.name:
            raise AirflowPluginException(f"{cls.__name__} has no name")

    @classmethod
    def on_load(cls, *args: Any, **kwargs: Any) -> None:
        """Airflow calls this once when it loads the plugin; Tradewind never does."""


class AirflowPluginException(Exception):
    """A plugin is invalid (`validate()` found no name)."""


__all__ = [
    "AirflowPlugin",
    "AirflowPluginException",
]
