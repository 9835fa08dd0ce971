"""Channel layer group names for live events: one group per tenant and one per DAG of a tenant.

Channels accepts group names of fewer than 100 ASCII letters, digits, hyphens, underscores and periods.
DAG ids may hold other characters (Airflow allows any word character) or be long, so such ids are named
by a hash under a different segment (`dagh`), which keeps the mapping one-to-one: a readable name
`tenant.<id>.dag.<dag_id>` can never equal a hashed one.
"""

from __future__ import annotations

import hashlib
import re

_MAX_LENGTH = 99
_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")


def tenant_group(tenant_id: int) -> str:
    """The group that receives every event of the tenant."""
    return f"tenant.{int(tenant_id)}"


def dag_group(tenant_id: int, dag_id: str) -> str:
    """The group that receives the events of one DAG of the tenant."""
    readable = f"{tenant_group(tenant_id)}.dag.{dag_id}"
    if _SAFE.match(dag_id) and len(readable) <= _MAX_LENGTH:
        return readable
    digest = hashlib.sha256(dag_id.encode()).hexdigest()[:40]
    return f"{tenant_group(tenant_id)}.dagh.{digest}"
