"""The DAG pages of the browser UI: the DAG list, a DAG's grid, details and docs, triggering, runs, task
instances with their logs, DAG repositories and import errors.

Every page is a TenantView (the role each HTTP method needs), every row comes from `scoped()` (another
tenant's DAG, or one the member may not see, is a 404), DAG-specific actions also ask can() about that DAG
(403), and every write goes through a service; a service's refusal is shown on the page.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme

from frontend.grid import Cell, TIRow, build_grid, grid_rows
from scheduler import bundles, services
from scheduler.models import (
    NO_MAP_INDEX,
    Bundle,
    BundleVersion,
    Dag,
    DagRun,
    ParseImportError,
    TaskInstance,
    TaskInstanceHistory,
    XCom,
)
from scheduler.states import FINISHED, RUN_FINISHED, DagRunState, TIState
from tenants.roles import can
from tenants.scoping import TenantView
from tradewind.accounts.grants import filter_granted
from tradewind.errors import DomainError

DAGS_PER_PAGE = 50
RECENT_RUNS = 10  # dots per DAG in the list
GRID_RUN_CHOICES = (10, 25, 50, 100)
GRID_RUNS_DEFAULT = 25
BAR_MIN_PX, BAR_MAX_PX = 6, 44  # the grid header's run bars
LEGEND_STATES = (
    "success",
    "running",
    "failed",
    "upstream_failed",
    "up_for_retry",
    "queued",
    "scheduled",
    "skipped",
    "deferred",
    "none",
)
MARKABLE_TI_STATES = (TIState.SUCCESS, TIState.FAILED)
MARKABLE_RUN_STATES = (DagRunState.SUCCESS, DagRunState.FAILED, DagRunState.QUEUED)


class _InvalidForm(DomainError):
    """Form input the page refuses before any service sees it."""


def _flag(request: HttpRequest, name: str) -> bool:
    return request.POST.get(name) in {"1", "true", "on", "yes"}


def _next_or(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    """Back to the page the form came from (this site only), else to `fallback`."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return HttpResponseRedirect(target)
    return HttpResponseRedirect(fallback)


def dag_url(dag: Dag) -> str:
    """The DAG page of `dag`."""
    return reverse("ui-dag", kwargs={"tenant_slug": _slug(dag), "dag_id": dag.dag_id})


def run_url(run: DagRun) -> str:
    """The page of a run."""
    return reverse(
        "ui-run", kwargs={"tenant_slug": _slug(run), "dag_id": run.dag.dag_id, "run_id": run.run_id}
    )


def ti_url(run: DagRun, task_id: str, map_index: int = NO_MAP_INDEX) -> str:
    """The page of one task instance of `run`."""
    kwargs = {"tenant_slug": _slug(run), "dag_id": run.dag.dag_id, "run_id": run.run_id, "task_id": task_id}
    if map_index == NO_MAP_INDEX:
        return reverse("ui-ti", kwargs=kwargs)
    return reverse("ui-ti-mapped", kwargs={**kwargs, "map_index": map_index})


def _slug(obj: Any) -> str:
    return obj.tenant.slug


class DagPageView(TenantView):
    """Base of the DAG pages: the member's DAGs, runs and task instances, and the per-DAG action check."""

    def get_dag(self, dag_id: str) -> Dag:
        """The DAG `dag_id` if the member may see it; 404 otherwise (another tenant's included)."""
        qs = self.scoped(Dag, "").select_related("tenant", "bundle", "active_version__bundle_version")
        return get_object_or_404(qs, dag_id=dag_id)

    def get_run(self, dag: Dag, run_id: str) -> DagRun:
        """The run `run_id` of a DAG already found by get_dag()."""
        qs = self.scoped(DagRun).select_related("tenant", "dag", "dag_version", "triggered_by")
        return get_object_or_404(qs, dag=dag, run_id=run_id)

    def get_ti(self, run: DagRun, task_id: str, map_index: int) -> TaskInstance:
        """The task instance `task_id`[`map_index`] of a run already found by get_run()."""
        ti = get_object_or_404(self.scoped(TaskInstance), dag_run=run, task_id=task_id, map_index=map_index)
        ti.dag_run = run
        return ti

    def check(self, action: str, dag: Dag) -> None:
        """403 unless the member may perform `action` on this DAG (its per-DAG grants included)."""
        if not can(self.request.membership, action, dag):
            raise PermissionDenied("Your role in this tenant does not allow this action on this DAG.")


# --- DAG list ---------------------------------------------------------------------------------------------


class DagListView(DagPageView):
    """The tenant's DAGs with their schedule, next run and recent runs; search, tag and paused filters."""

    required = {"get": "dag.view"}

    def get(self, request: HttpRequest) -> HttpResponse:
        visible = self.scoped(Dag, "").filter(is_active=True)
        tag_rows = list(visible.values_list("pk", "tags"))
        all_tags = sorted({tag for _, tags in tag_rows for tag in tags or []})
        query = request.GET.get("q", "").strip()
        wanted_tags = [tag for tag in request.GET.getlist("tags") if tag]
        status = request.GET.get("status", "all")
        dags = visible
        if query:
            dags = dags.filter(Q(dag_id__icontains=query) | Q(owners__icontains=query))
        if wanted_tags:
            wanted = set(wanted_tags)
            dags = dags.filter(pk__in=[pk for pk, tags in tag_rows if wanted & set(tags or [])])
        if status in {"active", "paused"}:
            dags = dags.filter(is_paused=status == "paused")
        page = Paginator(dags.order_by("dag_id"), DAGS_PER_PAGE).get_page(request.GET.get("page"))
        on_page = [dag.pk for dag in page]
        recent = _recent_runs(self.scoped(DagRun).filter(dag__in=on_page))
        editable = set()
        if can(request.membership, "dag.edit"):  # and, for members limited to granted DAGs, which ones
            granted = filter_granted(request.membership, visible.filter(pk__in=on_page), "dag.edit")
            editable = set(granted.values_list("pk", flat=True))
        rows = [
            {
                "dag": dag,
                "runs": list(reversed(recent.get(dag.pk, []))),
                "last_run": (recent.get(dag.pk) or [None])[0],
                "can_edit": dag.pk in editable,
            }
            for dag in page
        ]
        paused = visible.filter(is_paused=True).count()
        counts = {"all": len(tag_rows), "active": len(tag_rows) - paused, "paused": paused}
        status_links = [
            {
                "label": key.capitalize(),
                "count": counts[key],
                "url": _url_with(request, status=key),
                "current": status == key or (key == "all" and status not in counts),
            }
            for key in ("all", "active", "paused")
        ]
        return render(
            request,
            "dags/list.html",
            {
                "rows": rows,
                "page": page,
                "query": query,
                "all_tags": all_tags,
                "wanted_tags": wanted_tags,
                "status": status,
                "counts": counts,
                "status_links": status_links,
                "import_error_count": self.scoped(ParseImportError)
                .filter(bundle_version__state=BundleVersion.State.ACTIVE)
                .count(),
                "filter_query": _query_without(request, "page"),
            },
        )


def _recent_runs(runs: QuerySet[DagRun]) -> dict[int, list[DagRun]]:
    """dag pk -> the latest RECENT_RUNS of `runs` of that DAG, newest first, in one query."""
    newest_first = [F("run_after").desc(), F("pk").desc()]
    runs = (
        runs.select_related("tenant", "dag")
        .annotate(rank=Window(RowNumber(), partition_by=F("dag_id"), order_by=newest_first))
        .filter(rank__lte=RECENT_RUNS)
        .order_by("dag_id", *newest_first)
    )
    found: dict[int, list[DagRun]] = {}
    for run in runs:
        found.setdefault(run.dag_id, []).append(run)
    return found


def _query_without(request: HttpRequest, *names: str) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


def _url_with(request: HttpRequest, **changes: str) -> str:
    """This page's query string with `changes` applied, back on the first page."""
    query = request.GET.copy()
    query.pop("page", None)
    for name, value in changes.items():
        query[name] = value
    return f"?{query.urlencode()}"


# --- One DAG: grid, details, docs; trigger; pause -------------------------------------------------------


class DagDetailView(DagPageView):
    """A DAG's grid of recent runs × tasks, its details, params and docs, and its latest runs."""

    required = {"get": "dag.view"}

    def get(self, request: HttpRequest, dag_id: str) -> HttpResponse:
        dag = self.get_dag(dag_id)
        num_runs = _int(request.GET.get("num_runs"), GRID_RUNS_DEFAULT)
        if num_runs not in GRID_RUN_CHOICES:
            num_runs = GRID_RUNS_DEFAULT
        runs = list(
            self.scoped(DagRun)
            .filter(dag=dag)
            .select_related("tenant", "dag", "dag_version")
            .order_by("-run_after", "-pk")[:num_runs]
        )
        runs.reverse()  # oldest on the left, as in Airflow's grid
        version = dag.active_version
        serialized = version.serialized if version is not None else {}
        tis = (
            self.scoped(TaskInstance)
            .filter(dag_run__in=[run.pk for run in runs])
            .values_list("dag_run_id", "task_id", "map_index", "state", "try_number")
        )
        rows = build_grid(serialized, [run.pk for run in runs], (TIRow(*values) for values in tis))
        for row in rows:
            for run, cell in zip(runs, row.cells, strict=True):
                cell.run_id, cell.url = run.run_id, _cell_url(run, cell)
        _set_bar_heights(runs)
        active = any(run.state not in RUN_FINISHED for run in runs)
        return render(
            request,
            "dags/dag.html",
            {
                "dag": dag,
                "version": version,
                "serialized": serialized,
                "runs": runs,
                "rows": rows,
                "latest_runs": list(reversed(runs))[:10],
                "num_runs": num_runs,
                "num_run_choices": GRID_RUN_CHOICES,
                "params": _params(serialized),
                "has_active_runs": active,
                "legend_states": LEGEND_STATES,
                "can_trigger": can(request.membership, "run.trigger", dag),
                "can_edit": can(request.membership, "dag.edit", dag),
                "ws_path": f"/t/{request.tenant.slug}/ws/dags/{dag.dag_id}/",
            },
        )


def _set_bar_heights(runs: list[DagRun]) -> None:
    """Each run's bar in the grid header is as tall as its duration relative to the longest shown."""
    now = timezone.now()
    durations = [
        ((run.end_date or now) - run.start_date).total_seconds() if run.start_date else 0.0 for run in runs
    ]
    longest = max(durations, default=0.0) or 1.0
    for run, seconds in zip(runs, durations, strict=True):
        run.bar_height = BAR_MIN_PX + round((BAR_MAX_PX - BAR_MIN_PX) * seconds / longest)


def _cell_url(run: DagRun, cell: Cell) -> str | None:
    if cell.task_id is None:
        return None
    if cell.count > 1:
        return f"{run_url(run)}?task_id={cell.task_id}"
    return ti_url(run, cell.task_id, cell.map_index)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in {None, ""} else default
    except ValueError:
        return default


def _params(serialized: dict) -> list[dict[str, Any]]:
    """The DAG's params as rows: name, default, type, description."""
    rows = []
    for name, param in sorted((serialized.get("params") or {}).items()):
        param = param if isinstance(param, dict) else {"default": param}
        schema = param.get("schema") or {}
        rows.append(
            {
                "name": name,
                "default": param.get("default"),
                "type": schema.get("type", ""),
                "description": param.get("description") or schema.get("description") or "",
            }
        )
    return rows


class DagTriggerView(DagPageView):
    """The Trigger DAG form: conf as JSON (prefilled with the params' defaults), an optional logical date,
    run id and note. A conf that is not a JSON object, or that the params reject, is shown on the form."""

    required = {"get": "run.trigger", "post": "run.trigger"}

    def get(self, request: HttpRequest, dag_id: str) -> HttpResponse:
        dag = self.get_dag(dag_id)
        self.check("run.trigger", dag)
        defaults = services.get_dag_params(dag.active_version) if dag.active_version else {}
        form = {
            "conf": json.dumps(defaults, indent=2, default=str),
            "logical_date": "",
            "run_id": "",
            "note": "",
        }
        return self._form(request, dag, form, error=None)

    def post(self, request: HttpRequest, dag_id: str) -> HttpResponse:
        dag = self.get_dag(dag_id)
        self.check("run.trigger", dag)
        form = {name: request.POST.get(name, "") for name in ("conf", "logical_date", "run_id", "note")}
        try:
            conf = _parse_conf(form["conf"])
            logical_date = _parse_logical_date(form["logical_date"])
            run = services.trigger_run(
                tenant=request.tenant,
                actor=request.actor,
                dag=dag,
                conf=conf,
                logical_date=logical_date,
                run_id=form["run_id"].strip() or None,
                note=form["note"].strip(),
                request=request,
            )
        except DomainError as error:
            return self._form(request, dag, form, error=str(error), status=400)
        messages.success(request, f"Triggered {dag.dag_id}: run {run.run_id}.")
        run.dag = dag
        return redirect(run_url(run))

    def _form(
        self, request: HttpRequest, dag: Dag, form: dict[str, str], *, error: str | None, status: int = 200
    ) -> HttpResponse:
        serialized = dag.active_version.serialized if dag.active_version else {}
        context = {"dag": dag, "form": form, "error": error, "params": _params(serialized)}
        return render(request, "dags/trigger.html", context, status=status)


def _parse_conf(text: str) -> dict:
    if not text.strip():
        return {}
    try:
        conf = json.loads(text)
    except json.JSONDecodeError as error:
        raise _InvalidForm(
            f"Conf is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})."
        ) from None
    if not isinstance(conf, dict):
        raise _InvalidForm('Conf must be a JSON object, like {"key": "value"}.')
    return conf


def _parse_logical_date(text: str) -> datetime | None:
    if not text.strip():
        return None
    moment = parse_datetime(text.strip())
    if moment is None:
        raise _InvalidForm(f"Logical date {text!r} is not a date and time like 2024-01-31T06:00.")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class DagPauseView(DagPageView):
    """Pause or unpause a DAG (the toggle on the list and DAG pages)."""

    required = {"post": "dag.edit"}

    def post(self, request: HttpRequest, dag_id: str) -> HttpResponse:
        dag = self.get_dag(dag_id)
        self.check("dag.edit", dag)
        is_paused = _flag(request, "is_paused")
        try:
            services.set_paused(
                tenant=request.tenant, actor=request.actor, dag=dag, is_paused=is_paused, request=request
            )
            messages.success(
                request, f"{dag.dag_id} is {'paused' if is_paused else 'running on its schedule'}."
            )
        except DomainError as error:
            messages.error(request, str(error))
        return _next_or(request, dag_url(dag))


# --- Runs and task instances -----------------------------------------------------------------------------


class RunDetailView(DagPageView):
    """One run: its details and conf, and its task instances (state, try, duration, start and end), with
    clear and mark actions for members who may."""

    required = {"get": "run.view"}

    def get(self, request: HttpRequest, dag_id: str, run_id: str) -> HttpResponse:
        dag = self.get_dag(dag_id)
        run = self.get_run(dag, run_id)
        tis = list(self.scoped(TaskInstance).filter(dag_run=run))
        is_finished = run.state in RUN_FINISHED and all(ti.state in FINISHED for ti in tis)
        task_filter = request.GET.get("task_id", "")
        if task_filter:
            tis = [ti for ti in tis if ti.task_id == task_filter]
        rows = grid_rows(run.dag_version.serialized)
        order = {
            task_ids[0]: (index, row.depth) for index, (row, task_ids) in enumerate(rows) if not row.is_group
        }
        tis.sort(key=lambda ti: (order.get(ti.task_id, (len(order), 0))[0], ti.task_id, ti.map_index))
        entries = [
            {
                "ti": ti,
                "depth": order.get(ti.task_id, (0, 0))[1],
                "url": ti_url(run, ti.task_id, ti.map_index),
            }
            for ti in tis
        ]
        for ti in tis:
            ti.dag_run = run
        return render(
            request,
            "dags/run.html",
            {
                "dag": dag,
                "run": run,
                "entries": entries,
                "task_filter": task_filter,
                "has_mapped": any(ti.map_index != NO_MAP_INDEX for ti in tis),
                "is_finished": is_finished,
                "can_clear": can(request.membership, "run.clear", dag),
                "can_mark": can(request.membership, "run.mark", dag),
                "ti_states": MARKABLE_TI_STATES,
                "run_states": MARKABLE_RUN_STATES,
                "ws_path": f"/t/{request.tenant.slug}/ws/dags/{dag.dag_id}/",
            },
        )


class RunClearView(DagPageView):
    """Clear a whole run, or one task instance (optionally with its downstream or upstream tasks)."""

    required = {"post": "run.clear"}

    def post(self, request: HttpRequest, dag_id: str, run_id: str) -> HttpResponse:
        dag = self.get_dag(dag_id)
        self.check("run.clear", dag)
        run = self.get_run(dag, run_id)
        task_id = request.POST.get("task_id", "")
        try:
            if task_id:
                map_index = _int(request.POST.get("map_index"), NO_MAP_INDEX)
                cleared = services.clear_task_instances(
                    tenant=request.tenant,
                    actor=request.actor,
                    run=run,
                    task_ids=[task_id],
                    map_indexes=None if map_index == NO_MAP_INDEX else [map_index],
                    downstream=_flag(request, "downstream"),
                    upstream=_flag(request, "upstream"),
                    only_failed=_flag(request, "only_failed"),
                    request=request,
                )
            else:
                cleared = services.clear_run(
                    tenant=request.tenant,
                    actor=request.actor,
                    run=run,
                    only_failed=_flag(request, "only_failed"),
                    request=request,
                )
            messages.success(request, _cleared_message(cleared))
        except DomainError as error:
            messages.error(request, str(error))
        return _next_or(request, run_url(run))


def _cleared_message(cleared: Iterable[TaskInstance]) -> str:
    labels = [
        ti.task_id if ti.map_index == NO_MAP_INDEX else f"{ti.task_id}[{ti.map_index}]" for ti in cleared
    ]
    if not labels:
        return "Nothing to clear."
    shown = ", ".join(labels[:8]) + (f" and {len(labels) - 8} more" if len(labels) > 8 else "")
    return f"Cleared {len(labels)} task instance{'s' if len(labels) != 1 else ''}: {shown}."


class RunMarkView(DagPageView):
    """Mark a run, or one task instance (optionally with its downstream or upstream tasks), success or
    failed."""

    required = {"post": "run.mark"}

    def post(self, request: HttpRequest, dag_id: str, run_id: str) -> HttpResponse:
        dag = self.get_dag(dag_id)
        self.check("run.mark", dag)
        run = self.get_run(dag, run_id)
        state = request.POST.get("state", "")
        task_id = request.POST.get("task_id", "")
        try:
            if task_id:
                if state not in MARKABLE_TI_STATES:
                    raise _InvalidForm(f"A task instance can be marked {' or '.join(MARKABLE_TI_STATES)}.")
                ti = self.get_ti(run, task_id, _int(request.POST.get("map_index"), NO_MAP_INDEX))
                changed = services.set_task_instance_state(
                    tenant=request.tenant,
                    actor=request.actor,
                    ti=ti,
                    state=state,
                    downstream=_flag(request, "downstream"),
                    upstream=_flag(request, "upstream"),
                    request=request,
                )
                messages.success(request, f"Marked {len(changed)} task instance(s) {state}.")
            else:
                if state not in MARKABLE_RUN_STATES:
                    raise _InvalidForm(f"A run can be marked {' or '.join(MARKABLE_RUN_STATES)}.")
                services.set_run_state(
                    tenant=request.tenant, actor=request.actor, run=run, state=state, request=request
                )
                messages.success(request, f"Marked run {run.run_id} {state}.")
        except DomainError as error:
            messages.error(request, str(error))
        return _next_or(request, run_url(run))


class TaskInstanceView(DagPageView):
    """One task instance: its details, tries, the log of the chosen try (followed live while it runs),
    rendered template fields and XComs, with clear and mark actions."""

    required = {"get": "run.view"}

    def get(
        self, request: HttpRequest, dag_id: str, run_id: str, task_id: str, map_index: int = NO_MAP_INDEX
    ) -> HttpResponse:
        dag = self.get_dag(dag_id)
        run = self.get_run(dag, run_id)
        ti = self.get_ti(run, task_id, map_index)
        tries = _tries(ti)
        chosen = _int(request.GET.get("try"), ti.try_number)
        if tries and chosen not in {t["try_number"] for t in tries}:
            chosen = tries[-1]["try_number"]
        task = next(
            (t for t in run.dag_version.serialized.get("tasks") or [] if t.get("task_id") == task_id), {}
        )
        mapped = list(
            self.scoped(TaskInstance)
            .filter(dag_run=run, task_id=task_id, map_index__gte=0)
            .values_list("map_index", "state", "map_index_label")
        )
        xcoms = self.scoped(XCom).filter(dag_run=run, task_id=task_id, map_index=map_index).order_by("key")
        return render(
            request,
            "dags/task_instance.html",
            {
                "dag": dag,
                "run": run,
                "ti": ti,
                "task": task,
                "tries": tries,
                "chosen_try": chosen if tries else None,
                "log_url": _log_url(run, ti, chosen) if tries else None,
                "can_view_log": can(request.membership, "log.view", dag),
                "mapped": [
                    {"map_index": index, "state": state, "label": label, "url": ti_url(run, task_id, index)}
                    for index, state, label in mapped
                ],
                "xcoms": xcoms,
                "rendered_fields": ti.rendered_fields or {},
                "is_finished": ti.state in FINISHED,
                "can_clear": can(request.membership, "run.clear", dag),
                "can_mark": can(request.membership, "run.mark", dag),
                "ti_states": MARKABLE_TI_STATES,
                "ws_path": f"/t/{request.tenant.slug}/ws/dags/{dag.dag_id}/",
            },
        )


def _tries(ti: TaskInstance) -> list[dict[str, Any]]:
    """Every try of `ti` so far, oldest first: the finished ones kept in history, then the current one."""
    tries = [
        {
            "try_number": h.try_number,
            "state": h.state,
            "start_date": h.start_date,
            "end_date": h.end_date,
            "duration": h.duration,
            "hostname": h.hostname,
            "error": h.error,
        }
        for h in TaskInstanceHistory.objects.for_tenant(ti.tenant_id).filter(task_instance=ti)
    ]
    if ti.try_number > 0 and ti.try_number not in {t["try_number"] for t in tries}:
        tries.append(
            {
                "try_number": ti.try_number,
                "state": ti.state,
                "start_date": ti.start_date,
                "end_date": ti.end_date,
                "duration": ti.duration,
                "hostname": ti.hostname,
                "error": ti.error,
            }
        )
    return sorted(tries, key=lambda t: t["try_number"])


def _log_url(run: DagRun, ti: TaskInstance, try_number: int) -> str:
    """Where the log viewer reads one try's log by offset: the REST API's logs endpoint, which answers
    {content, next_offset, finished}."""
    kwargs = {
        "tenant_slug": _slug(run),
        "dag_id": run.dag.dag_id,
        "dag_run_id": run.run_id,
        "task_id": ti.task_id,
        "try_number": try_number,
    }
    return f"{reverse('taskinstance-logs', kwargs=kwargs)}?map_index={ti.map_index}"


# --- DAG repositories and import errors ----------------------------------------------------------------


class BundlesView(DagPageView):
    """The tenant's DAG repositories: their versions (state, files, import errors) and, for Op, an upload
    form (zip or tar.gz, optionally validate-only) and activate / roll back buttons."""

    required = {"get": "bundle.view", "post": "bundle.upload"}

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._page(request, form={"bundle_name": "default", "validate_only": False}, error=None)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = {
            "bundle_name": request.POST.get("bundle_name", "").strip() or "default",
            "validate_only": _flag(request, "validate_only"),
        }
        archive = request.FILES.get("archive")
        if archive is None:
            return self._page(
                request, form=form, error="Choose a .zip or .tar.gz archive to upload.", status=400
            )
        try:
            result = bundles.upload_bundle(
                tenant=request.tenant,
                actor=request.actor,
                source=archive,
                bundle_name=form["bundle_name"],
                validate_only=form["validate_only"],
            )
        except DomainError as error:
            return self._page(request, form=form, error=f"Upload rejected: {error}", status=400)
        version = result.version
        errors = len(result.import_errors)
        summary = f"{len(result.dags)} DAG{'s' if len(result.dags) != 1 else ''}"
        if errors:
            summary += f", {errors} import error{'s' if errors != 1 else ''}"
        if result.activated:
            messages.success(request, f"Uploaded {version}: active ({summary}).")
        elif version.state == BundleVersion.State.ACTIVE:
            messages.info(request, f"Nothing changed: the upload is {version}, the active version already.")
        else:
            messages.success(request, f"Validated {version} without activating it ({summary}).")
        return redirect("ui-bundles", tenant_slug=request.tenant.slug)

    def _page(
        self, request: HttpRequest, *, form: dict, error: str | None, status: int = 200
    ) -> HttpResponse:
        repositories = []
        for bundle in self.scoped(Bundle).select_related("active_version").order_by("name"):
            versions = (
                self.scoped(BundleVersion)
                .filter(bundle=bundle)
                .select_related("uploaded_by")
                .order_by("-number")
            )
            repositories.append({"bundle": bundle, "versions": versions})
        return render(
            request,
            "dags/bundles.html",
            {
                "repositories": repositories,
                "form": form,
                "error": error,
                "can_upload": can(request.membership, "bundle.upload"),
            },
            status=status,
        )


class BundleActivateView(DagPageView):
    """Make a version of a repository its active one: roll back to an earlier version, or activate a newer
    (validate-only) one."""

    required = {"post": "bundle.upload"}

    def post(self, request: HttpRequest, bundle_name: str, number: int) -> HttpResponse:
        bundle = get_object_or_404(self.scoped(Bundle).select_related("active_version"), name=bundle_name)
        version = get_object_or_404(self.scoped(BundleVersion), bundle=bundle, number=number)
        active = bundle.active_version
        try:
            if active is not None and number < active.number:
                bundles.rollback(tenant=request.tenant, actor=request.actor, bundle=bundle, number=number)
                messages.success(request, f"Rolled {bundle.name} back to version {number}.")
            else:
                bundles.activate_version(tenant=request.tenant, actor=request.actor, version=version)
                messages.success(request, f"Activated {bundle.name} version {number}.")
        except DomainError as error:
            messages.error(request, str(error))
        return redirect("ui-bundles", tenant_slug=request.tenant.slug)


class ImportErrorsView(DagPageView):
    """DAG files that failed to import, with their tracebacks: those of the active versions, or of one
    version (?version=<bundle>:<number>)."""

    required = {"get": "bundle.view"}

    def get(self, request: HttpRequest) -> HttpResponse:
        errors: QuerySet = self.scoped(ParseImportError).select_related("bundle_version__bundle")
        version = None
        name, _, number = request.GET.get("version", "").partition(":")
        if name and number.isdigit():
            version = get_object_or_404(
                self.scoped(BundleVersion).select_related("bundle"), bundle__name=name, number=int(number)
            )
            errors = errors.filter(bundle_version=version)
        else:
            errors = errors.filter(bundle_version__state=BundleVersion.State.ACTIVE)
        errors = errors.order_by("bundle_version__bundle__name", "filename")
        return render(request, "dags/import_errors.html", {"errors": errors, "version": version})
