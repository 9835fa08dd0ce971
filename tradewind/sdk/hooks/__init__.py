"""Hooks of Airflow's standard provider that need no external system."""
