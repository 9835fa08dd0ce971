"""`manage.py pools list|set|delete --tenant SLUG`: a tenant's pools, as Airflow's `airflow pools` commands.

set and delete take `--as USERNAME` to act as a member (Op or above may edit pools); without it they act as
the system, i.e. the platform operator who has shell access.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q, Sum

from scheduler import services
from scheduler.models import Pool, TaskInstance
from scheduler.states import TIState
from tradewind.accounts.cli import add_actor_arguments, command_actor, get_tenant
from tradewind.errors import DomainError


class Command(BaseCommand):
    help = "Manage a tenant's pools: list them with their use, create or change one, delete one."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        listing = sub.add_parser("list", help="list the pools, their slots and the slots in use")
        set_ = sub.add_parser("set", help="create or change a pool")
        set_.add_argument("name", metavar="NAME")
        set_.add_argument("slots", metavar="SLOTS", type=int, help="task slots; -1 for unlimited")
        set_.add_argument("description", metavar="DESCRIPTION", nargs="?", default="")
        set_.add_argument(
            "--include-deferred", action="store_true", help="deferred tasks take a slot of the pool too"
        )
        delete = sub.add_parser("delete", help="delete a pool (not the default_pool)")
        delete.add_argument("name", metavar="NAME")
        for each in (listing, set_, delete):
            add_actor_arguments(each)

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = get_tenant(options["tenant"])
        command = options["subcommand"]
        action = "pool.view" if command == "list" else "pool.edit"
        actor = command_actor(tenant=tenant, username=options.get("as_user"), action=action)
        try:
            if command == "list":
                self._list(tenant)
            elif command == "set":
                pool = services.set_pool(
                    tenant=tenant,
                    actor=actor,
                    name=options["name"],
                    slots=options["slots"],
                    description=options["description"],
                    include_deferred=options["include_deferred"],
                )
                self.stdout.write(f"Pool {pool.name} set: {_slots(pool.slots)} slots.")
            else:
                pool = Pool.objects.for_tenant(tenant).filter(name=options["name"]).first()
                if pool is None:
                    raise CommandError(f"tenant {tenant.slug!r} has no pool {options['name']!r}")
                services.delete_pool(tenant=tenant, actor=actor, pool=pool)
                self.stdout.write(f"Pool {pool.name} deleted.")
        except DomainError as error:
            raise CommandError(str(error)) from None

    def _list(self, tenant: Any) -> None:
        services.ensure_default_pool(tenant)
        pools = list(Pool.objects.for_tenant(tenant).order_by("name"))
        used = _slots_used(tenant, pools)
        rows = [
            ("pool", "slots", "running", "queued", "deferred", "include_deferred", "description"),
            *(
                (
                    pool.name,
                    _slots(pool.slots),
                    str(used.get((pool.name, TIState.RUNNING), 0)),
                    str(used.get((pool.name, TIState.QUEUED), 0)),
                    str(used.get((pool.name, TIState.DEFERRED), 0)),
                    "yes" if pool.include_deferred else "no",
                    pool.description,
                )
                for pool in pools
            ),
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write(
                "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            )


def _slots(slots: int) -> str:
    return "unlimited" if slots < 0 else str(slots)


def _slots_used(tenant: Any, pools: list[Pool]) -> dict[tuple[str, str], int]:
    """(pool, state) -> slots taken by the tenant's running, queued and deferred task instances."""
    states = [TIState.RUNNING, TIState.QUEUED, TIState.DEFERRED]
    rows = (
        TaskInstance.objects.for_tenant(tenant)
        .filter(Q(state__in=states), pool__in=[pool.name for pool in pools])
        .values_list("pool", "state")
        .annotate(n=Sum("pool_slots"))
    )
    return {(pool, state): n or 0 for pool, state, n in rows}
