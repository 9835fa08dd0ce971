"""`airflow.sdk.api.datamodels`."""
