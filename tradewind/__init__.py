"""Tradewind: the Django project and platform core. Importing this package imports nothing else."""
