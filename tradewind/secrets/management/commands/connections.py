"""`manage.py connections list|get|add|delete|import|export --tenant SLUG`, in Airflow's file formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tradewind.accounts.cli import add_actor_arguments, command_actor, get_tenant
from tradewind.errors import DomainError
from tradewind.secrets import formats, services
from tradewind.secrets.models import Connection


class Command(BaseCommand):
    help = (
        "Manage a tenant's connections. import/export read and write JSON, YAML or .env files as Airflow's "
        "`airflow connections import|export` do (format from the file name, or --file-format)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        listing = sub.add_parser("list", help="list connections (no secrets)")
        get = sub.add_parser("get", help="print a connection (secrets included) as JSON or its URI")
        get.add_argument("conn_id")
        get.add_argument("--output", choices=["json", "uri"], default="json")
        add = sub.add_parser("add", help="create a connection")
        add.add_argument("conn_id")
        add.add_argument("--conn-uri")
        add.add_argument("--conn-json")
        for name in (
            "conn-type",
            "conn-description",
            "conn-host",
            "conn-login",
            "conn-password",
            "conn-schema",
            "conn-port",
            "conn-extra",
        ):
            add.add_argument(f"--{name}")
        delete = sub.add_parser("delete", help="delete a connection")
        delete.add_argument("conn_id")
        imp = sub.add_parser("import", help="import connections from a file")
        imp.add_argument("file")
        imp.add_argument("--file-format", "--format", dest="format", choices=formats.FILE_FORMATS)
        imp.add_argument("--overwrite", action="store_true", help="replace connections that already exist")
        exp = sub.add_parser("export", help="export connections to a file ('-' for stdout)")
        exp.add_argument("file")
        exp.add_argument("--file-format", "--format", dest="format", choices=formats.FILE_FORMATS)
        exp.add_argument("--serialization-format", choices=["uri", "json"], default="uri")
        for each in (listing, get, add, delete, imp, exp):
            add_actor_arguments(each)

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = get_tenant(options["tenant"])
        command = options["subcommand"]
        needed = "connection.view" if command == "list" else "connection.edit"
        actor = command_actor(tenant=tenant, username=options.get("as_user"), action=needed)
        try:
            getattr(self, f"_{command}")(tenant, actor, options)
        except DomainError as error:
            raise CommandError(str(error)) from error

    def _list(self, tenant: Any, actor: Any, options: dict[str, Any]) -> None:
        for conn in Connection.objects.for_tenant(tenant).order_by("conn_id"):
            self.stdout.write(f"{conn.conn_id}\t{conn.conn_type}\t{conn.host}")

    def _get(self, tenant: Any, actor: Any, options: dict[str, Any]) -> None:
        fields = services.get_connection(tenant=tenant, conn_id=options["conn_id"], actor=actor)
        if fields is None:
            raise CommandError(f"Connection {options['conn_id']} not found")
        if options["output"] == "uri":
            self.stdout.write(formats.connection_uri(fields))
        else:
            self.stdout.write(json.dumps(fields, indent=2))

    def _add(self, tenant: Any, actor: Any, options: dict[str, Any]) -> None:
        if options["conn_uri"]:
            fields: Any = options["conn_uri"]
        elif options["conn_json"]:
            try:
                fields = json.loads(options["conn_json"])
            except ValueError as error:
                raise CommandError(f"--conn-json is not valid JSON: {error}") from error
        else:
            fields = {
                name: options[f"conn_{name}"]
                for name in ("type", "description", "host", "login", "password", "schema", "port", "extra")
                if options[f"conn_{name}"] is not None
            }
            fields["conn_type"] = fields.pop("type", None)
        if isinstance(fields, str):
            fields = {"uri": fields}
        services.set_connection(
            tenant=tenant, actor=actor, fields={**fields, "conn_id": options["conn_id"]}, create_only=True
        )
        self.stdout.write(f"Successfully added `conn_id`={options['conn_id']}")

    def _delete(self, tenant: Any, actor: Any, options: dict[str, Any]) -> None:
        services.delete_connection(tenant=tenant, actor=actor, conn_id=options["conn_id"])
        self.stdout.write(f"Successfully deleted connection with `conn_id`={options['conn_id']}")

    def _import(self, tenant: Any, actor: Any, options: dict[str, Any]) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"Missing connections file: {path}")
        fmt = formats.file_format(path, options["format"])
        conns = formats.parse_connections(path.read_text(encoding="utf-8"), fmt)
        counts = services.import_connections(
            tenant=tenant, actor=actor, connections=conns, overwrite=options["overwrite"]
        )
        self.stdout.write(
            f"{counts['created']} created, {counts['updated']} updated, {counts['skipped']} skipped "
            "(already existed; use --overwrite)."
        )

    def _export(self, tenant: Any, actor: Any, options: dict[str, Any]) -> None:
        to_stdout = options["file"] == "-"
        fmt = formats.file_format(Path(options["file"]), options["format"] or ("json" if to_stdout else None))
        text = formats.dump_connections(
            services.export_connections(tenant=tenant, actor=actor), fmt, options["serialization_format"]
        )
        if to_stdout:
            self.stdout.write(text, ending="")
        else:
            Path(options["file"]).write_text(text, encoding="utf-8")
            self.stdout.write(f"Connections successfully exported to {options['file']}.")
