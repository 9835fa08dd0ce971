from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The append-only, hash-chained audit log; also audits platform superusers' changes in the admin."""

    name = "tradewind.audit"
    label = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from tradewind.audit import signals  # noqa: F401  (connects the admin and login receivers)
