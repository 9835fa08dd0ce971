"""Task log storage: file layout, masking before anything is written, reading while the log grows."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.models import Dag, DagRun, TaskInstance
from tradewind.secrets.masking import Masker
from workers import logs
from workers.logs import LogStore, get_log_store, path_component


def task_instance(
    *,
    tenant_id: int = 7,
    dag_id: str = "etl",
    run_id: str = "manual__2024-03-15T00:00:00+00:00",
    task_id: str = "load",
    map_index: int = -1,
) -> TaskInstance:
    """An unsaved task instance: the log store only reads its identity."""
    run = DagRun(tenant_id=tenant_id, dag=Dag(tenant_id=tenant_id, dag_id=dag_id), run_id=run_id)
    return TaskInstance(tenant_id=tenant_id, dag_run=run, task_id=task_id, map_index=map_index)


@pytest.fixture
def store(tmp_path: Path) -> LogStore:
    return LogStore(tmp_path)


def test_one_file_per_try_under_tenant_dag_run_and_task(store, tmp_path):
    ti = task_instance()
    with store.writer(ti, 2) as out:
        out.write(b"hello\n")
    expected = tmp_path / "7" / "etl" / "manual__2024-03-15T00:00:00+00:00" / "load" / "2.log"
    assert expected.read_bytes() == b"hello\n"
    mapped = task_instance(map_index=3)
    assert (
        store.task_path(mapped, 1) == tmp_path / "7" / "etl" / mapped.dag_run.run_id / "load%5B3%5D" / "1.log"
    )


@pytest.mark.parametrize("hostile", ["..", ".", "../../etc", "a/b", "", "x\x00y"])
def test_ids_cannot_escape_the_tenant_folder(store, tmp_path, hostile):
    path = store.task_path(task_instance(dag_id=hostile, run_id=hostile, task_id=hostile), 1)
    assert path.resolve().is_relative_to((tmp_path / "7").resolve())
    assert len(path.relative_to(tmp_path).parts) == 5
    assert "/" not in path_component(hostile) and path_component(hostile) not in {".", ".."}


def test_output_is_masked_line_by_line_even_when_split_across_chunks(store):
    masker = Masker()
    masker.add("hunter2-password")
    ti = task_instance()
    with store.writer(ti, 1, masker=masker) as out:
        out.write(b"connecting with hunter2-pa")
        out.write(b"ssword now\nsecond line\n")
    assert store.read(ti, 1) == b"connecting with *** now\nsecond line\n"


def test_a_secret_learned_mid_try_is_masked_from_then_on(store):
    masker = Masker()
    ti = task_instance()
    with store.writer(ti, 1, masker=masker) as out:
        out.write(b"token is not known yet: abc-secret-123\n")
        masker.add("abc-secret-123")
        out.write(b"token abc-secret-123 is known now\n")
    assert store.read(ti, 1).splitlines() == [
        b"token is not known yet: abc-secret-123",
        b"token *** is known now",
    ]


def test_readable_while_written_and_followed_by_offset(store):
    ti = task_instance()
    out = store.writer(ti, 1)
    out.write(b"first\nsecond (partial")
    first = store.read(ti, 1)
    assert first == b"first\n"  # complete lines only, flushed at once
    out.write(b")\n")
    assert store.read(ti, 1, offset=len(first)) == b"second (partial)\n"
    assert store.read(ti, 1, offset=2, limit=3) == b"rst"
    out.write(b"no newline at the end")
    out.close()
    assert store.read(ti, 1).endswith(b"\nno newline at the end")
    assert store.size(ti, 1) == len(store.read(ti, 1))


def test_a_very_long_line_is_not_held_back_forever(store):
    ti = task_instance()
    out = store.writer(ti, 1)
    out.write(b"x" * (logs.MAX_PENDING_BYTES + 10))
    assert store.size(ti, 1) == logs.MAX_PENDING_BYTES + 10
    out.close()


def test_missing_log_reads_empty_and_tail_gives_last_lines(store):
    ti = task_instance()
    assert store.read(ti, 1) == b""
    assert store.tail(ti, 1) == ""
    with store.writer(ti, 1) as out:
        for n in range(30):
            out.line(f"line {n}")
    assert store.tail(ti, 1, lines=3) == "line 27\nline 28\nline 29"


def test_appending_across_writers_keeps_earlier_output(store):
    ti = task_instance()
    with store.writer(ti, 1) as out:
        out.line("the task deferred")
    with store.writer(ti, 1) as out:
        out.line("the trigger fired")
    assert store.read(ti, 1) == b"the task deferred\nthe trigger fired\n"


def test_dag_callback_logs_sit_next_to_the_task_folders(store, tmp_path):
    run = task_instance().dag_run
    with store.dag_callback_writer(run, "failure") as out:
        out.line("the callback ran")
    assert store.read_dag_callback(run, "failure") == b"the callback ran\n"
    assert store.dag_callback_path(run, "failure").parent.parent == tmp_path / "7" / "etl" / path_component(
        run.run_id
    )


def test_delete_tenant_removes_only_that_tenant(store):
    mine, other = task_instance(tenant_id=7), task_instance(tenant_id=8)
    for ti in (mine, other):
        with store.writer(ti, 1) as out:
            out.line("x")
    store.delete_tenant(7)
    assert store.read(mine, 1) == b""
    assert store.read(other, 1) == b"x\n"


class RecordingStore(LogStore):
    """A store configured by dotted path (stands for an S3/GCS store)."""


def test_store_is_pluggable_by_dotted_path(settings, tmp_path):
    settings.LOG_ROOT = tmp_path
    assert type(get_log_store()) is LogStore
    settings.TRADEWIND_LOG_STORE = f"{__name__}.RecordingStore"
    store = get_log_store()
    assert isinstance(store, RecordingStore) and store.root == tmp_path
    settings.TRADEWIND_LOG_STORE = "collections.OrderedDict"
    with pytest.raises(TypeError, match="not a workers.logs.LogStore subclass"):
        get_log_store()
