"""The DAG pages under `/t/<tenant_slug>/`: DAGs, runs, task instances, DAG repositories, import errors."""

from django.urls import path

from frontend import views as v

DAG = "dags/<str:dag_id>/"
RUN = f"{DAG}runs/<str:run_id>/"
TI = f"{RUN}tasks/<str:task_id>/"

urlpatterns = [
    path("dags/", v.DagListView.as_view(), name="ui-dags"),
    path(DAG, v.DagDetailView.as_view(), name="ui-dag"),
    path(f"{DAG}trigger/", v.DagTriggerView.as_view(), name="ui-dag-trigger"),
    path(f"{DAG}pause/", v.DagPauseView.as_view(), name="ui-dag-pause"),
    path(RUN, v.RunDetailView.as_view(), name="ui-run"),
    path(f"{RUN}clear/", v.RunClearView.as_view(), name="ui-run-clear"),
    path(f"{RUN}mark/", v.RunMarkView.as_view(), name="ui-run-mark"),
    path(TI, v.TaskInstanceView.as_view(), name="ui-ti"),
    path(f"{TI}<int:map_index>/", v.TaskInstanceView.as_view(), name="ui-ti-mapped"),
    path("bundles/", v.BundlesView.as_view(), name="ui-bundles"),
    path(
        "bundles/<str:bundle_name>/versions/<int:number>/activate/",
        v.BundleActivateView.as_view(),
        name="ui-bundle-activate",
    ),
    path("import-errors/", v.ImportErrorsView.as_view(), name="ui-import-errors"),
]
