"""Triggers the triggerer tests run: they report where they ran and misbehave on purpose."""

import asyncio
import logging
import os
import time

from tradewind.sdk.triggers import BaseTrigger, TriggerEvent

log = logging.getLogger(__name__)


class _Simple(BaseTrigger):
    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs

    def serialize(self):
        return (f"{type(self).__module__}.{type(self).__qualname__}", self.kwargs)


class SleepTrigger(_Simple):
    """Fires after `seconds` with where it ran."""

    async def run(self):
        await asyncio.sleep(self.kwargs.get("seconds", 0))
        yield TriggerEvent({"pid": os.getpid(), "uid": os.getuid(), "value": self.kwargs.get("value")})


class ChattyTrigger(_Simple):
    """Prints and logs, then fires."""

    async def run(self):
        print(f"printed by {self.kwargs['name']}")
        log.info("logged by %s", self.kwargs["name"])
        self.log.info("self.log of %s", self.kwargs["name"])  # Airflow's BaseTrigger is a LoggingMixin
        await asyncio.sleep(0.05)
        yield TriggerEvent(self.kwargs["name"])


class BoomTrigger(_Simple):
    """Raises."""

    async def run(self):
        await asyncio.sleep(0.05)
        raise ValueError("boom from the trigger")
        yield  # an async generator


class CleanupTrigger(_Simple):
    """Waits forever; its cleanup leaves a file behind."""

    async def run(self):
        await asyncio.sleep(3600)
        yield TriggerEvent(None)

    async def cleanup(self):
        with open(self.kwargs["path"], "w") as handle:
            handle.write("cleaned up")


class VariableTrigger(_Simple):
    """Fires with a variable read through the platform."""

    async def run(self):
        from tradewind.sdk.variables import Variable

        yield TriggerEvent(Variable.get(self.kwargs["key"]))


class BlockingTrigger(_Simple):
    """Blocks the event loop (a synchronous sleep)."""

    async def run(self):
        time.sleep(self.kwargs.get("seconds", 3600))
        yield TriggerEvent("woke up")


class ExitTrigger(_Simple):
    """Kills its own process."""

    async def run(self):
        await asyncio.sleep(self.kwargs.get("after", 0))
        os._exit(3)
        yield


class KillTrigger(_Simple):
    """Tries to signal every process of another uid; fires with what happened."""

    async def run(self):
        import signal

        outcomes = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if os.stat(f"/proc/{entry}").st_uid != self.kwargs["uid"]:
                    continue
                os.kill(int(entry), signal.SIGKILL)
                outcomes.append("killed")
            except PermissionError:
                outcomes.append("refused")
            except OSError:
                pass
        yield TriggerEvent({"uid": os.getuid(), "outcomes": outcomes})


class RunStateTrigger(_Simple):
    """Fires when another run of the tenant has finished, asking the platform (like Airflow's DagStateTrigger)."""

    async def run(self):
        from tradewind.sdk.execution import get_client

        while True:
            state = get_client().get_dag_run_state(dag_id=self.kwargs["dag_id"], run_id=self.kwargs["run_id"])
            if state in ("success", "failed", None):
                yield TriggerEvent({"state": state})
                return
            await asyncio.sleep(0.1)


class SecretTrigger(_Simple):
    """Prints a connection's password (the task log must show it masked)."""

    async def run(self):
        from tradewind.sdk.connections import BaseHook

        print("the password is", BaseHook.get_connection(self.kwargs["conn_id"]).password)
        yield TriggerEvent("ok")
