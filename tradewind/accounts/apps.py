from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "tradewind.accounts"
    label = "accounts"
    verbose_name = "Accounts"
