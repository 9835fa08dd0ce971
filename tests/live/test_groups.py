"""Group names: valid for every channel layer, one-to-one with (tenant, DAG), readable where possible."""

from __future__ import annotations

import itertools

from channels.layers import BaseChannelLayer

from tradewind.live.groups import dag_group, tenant_group

TRICKY_DAG_IDS = [
    "etl",
    "etl.daily",
    "etl-daily_v2",
    "données",
    "日次",
    "a" * 250,
    "a" * 249,
    "x" * 80,
    "dagh.0123",
    "with space",
    "h" + "0" * 39,
]


def test_names_are_valid_channel_layer_group_names():
    layer = BaseChannelLayer()
    for tenant_id, dag_id in itertools.product([1, 123456789], TRICKY_DAG_IDS):
        assert layer.require_valid_group_name(dag_group(tenant_id, dag_id))
    assert layer.require_valid_group_name(tenant_group(123456789))


def test_simple_dag_ids_stay_readable():
    assert tenant_group(7) == "tenant.7"
    assert dag_group(7, "etl.daily") == "tenant.7.dag.etl.daily"


def test_every_tenant_and_dag_has_its_own_group():
    names = [tenant_group(t) for t in (1, 11)]
    names += [dag_group(t, d) for t in (1, 11) for d in TRICKY_DAG_IDS]
    assert len(set(names)) == len(names)
