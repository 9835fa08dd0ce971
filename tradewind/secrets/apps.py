from django.apps import AppConfig


class SecretsConfig(AppConfig):
    """Encrypted connections and variables, per-tenant data keys, the Vault backend and masking."""

    name = "tradewind.secrets"
    label = "secrets"
    verbose_name = "Connections and variables"
