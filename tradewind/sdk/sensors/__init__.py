"""Tradewind's built-in sensors (Airflow's standard sensors): base, python, bash, filesystem, time_delta,
date_time, time, external_task."""
