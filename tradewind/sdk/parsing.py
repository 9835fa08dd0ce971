"""Import a DAG file and collect its DAGs, as Airflow's DagBag does (run inside the sandboxed child).

A DAG is found if it is a module global (including globals set through ``globals()[...]`` in a loop) or
was auto-registered while the module ran (left a ``with DAG(...)`` block, or built by a called `@dag`
function). Found DAGs get `fileloc` set to the file and are validated.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import sys

from tradewind.sdk.baseoperator import _SETUP_TEARDOWN_FRAMES
from tradewind.sdk.dag import DAG, DagContext
from tradewind.sdk.taskgroup import TaskGroupContext


def unique_module_name(path: str) -> str:
    """The module name a DAG file is imported under (unique per path, like Airflow's)."""
    digest = hashlib.sha1(os.path.abspath(path).encode("utf-8")).hexdigest()
    stem = os.path.splitext(os.path.basename(path))[0]
    return f"unusual_prefix_{digest}_{stem}"


def might_contain_dag(path: str) -> bool:
    """Airflow's "safe mode" heuristic: the file mentions "dag" and "airflow" (or "tradewind")."""
    with open(path, "rb") as fh:
        content = fh.read().lower()
    return b"dag" in content and (b"airflow" in content or b"tradewind" in content)


def _reset_authoring_state() -> None:
    DagContext._stack.clear()
    DagContext.autoregistered_dags.clear()
    TaskGroupContext._stack.clear()
    _SETUP_TEARDOWN_FRAMES.clear()


def import_dag_file(path: str, *, module_name: str | None = None, root: str | None = None) -> list[DAG]:
    """Import one DAG file as a fresh module and return the DAGs it defines (module globals first, then
    auto-registered ones, each once), each validated, with `fileloc` = the file's absolute path and
    `relative_fileloc` = its path relative to `root` (when given).

    Raises the import's own exception unchanged (SyntaxError, ImportError, AirflowDagCycleException,
    DuplicateTaskIdFound, ParamValidationError, ...)."""
    path = os.path.abspath(path)
    name = module_name or unique_module_name(path)
    sys.modules.pop(name, None)
    _reset_authoring_state()
    DagContext.current_autoregister_module_name = name
    try:
        loader = importlib.machinery.SourceFileLoader(name, path)
        spec = importlib.util.spec_from_loader(name, loader)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loader.exec_module(module)
        registered = [dag for dag, registered_in in DagContext.autoregistered_dags if registered_in == name]
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        DagContext.current_autoregister_module_name = None
        _reset_authoring_state()

    found: dict[int, DAG] = {}
    for value in list(vars(module).values()):
        if isinstance(value, DAG):
            found.setdefault(id(value), value)
    for dag in registered:
        found.setdefault(id(dag), dag)

    # Two DAGs of one file with the same dag_id: the later one wins, as in Airflow's DagBag.
    by_id: dict[str, DAG] = {}
    for dag in found.values():
        by_id.pop(dag.dag_id, None)
        by_id[dag.dag_id] = dag
    relative = os.path.relpath(path, root) if root else None
    for dag in by_id.values():
        dag.fileloc = path
        dag.relative_fileloc = relative
        dag.validate()
    return list(by_id.values())
