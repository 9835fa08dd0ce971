from django.apps import AppConfig


class FrontendConfig(AppConfig):
    """The browser UI's templates and static assets."""

    name = "frontend"
    verbose_name = "Frontend"
