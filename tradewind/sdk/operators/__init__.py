"""Tradewind's built-in operators (Airflow's standard operators): empty, python, bash, branch, trigger_dagrun,
latest_only."""
