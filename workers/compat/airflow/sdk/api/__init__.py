"""`airflow.sdk.api`: in Airflow, the client of the Execution API; here only its data models' enums."""
