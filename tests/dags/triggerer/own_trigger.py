"""A DAG file that defines its own trigger class and an operator deferring to it."""

import asyncio
from datetime import datetime, timedelta

from airflow import DAG
from airflow.models.baseoperator import BaseOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent


class CountdownTrigger(BaseTrigger):
    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds

    def serialize(self):
        return (f"{type(self).__module__}.CountdownTrigger", {"seconds": self.seconds})

    async def run(self):
        await asyncio.sleep(self.seconds)
        yield TriggerEvent({"counted": self.seconds})


class CountdownOperator(BaseOperator):
    def execute(self, context):
        self.defer(trigger=CountdownTrigger(0.2), method_name="done", timeout=timedelta(minutes=5))

    def done(self, context, event=None):
        return event


with DAG("own_trigger", start_date=datetime(2024, 1, 1), schedule=None):
    CountdownOperator(task_id="countdown")
