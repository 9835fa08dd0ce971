"""`manage.py variables list|get|set|delete|import|export --tenant SLUG`, in Airflow's file formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tradewind.accounts.cli import add_actor_arguments, command_actor, get_tenant
from tradewind.errors import DomainError
from tradewind.secrets import formats, services
from tradewind.secrets.models import Variable


class Command(BaseCommand):
    help = (
        "Manage a tenant's variables. import/export read and write JSON, YAML or .env files as Airflow's "
        "`airflow variables import|export` do (format from the file name, or --format)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        listing = sub.add_parser("list", help="list variable keys")
        get = sub.add_parser("get", help="print a variable's value")
        get.add_argument("key")
        get.add_argument("--json", "-j", action="store_true", help="pretty-print a JSON value")
        set_ = sub.add_parser("set", help="create or overwrite a variable")
        set_.add_argument("key")
        set_.add_argument("value")
        set_.add_argument("--description", default=None)
        set_.add_argument("--json", "-j", action="store_true", help="the value is JSON: check it")
        delete = sub.add_parser("delete", help="delete a variable")
        delete.add_argument("key")
        imp = sub.add_parser("import", help="import variables from a file")
        imp.add_argument("file")
        imp.add_argument("--format", choices=formats.FILE_FORMATS)
        imp.add_argument(
            "--action-on-existing-key", "-a", choices=["overwrite", "fail", "skip"], default="overwrite"
        )
        exp = sub.add_parser("export", help="export variables to a file ('-' for stdout)")
        exp.add_argument("file")
        exp.add_argument("--format", choices=formats.FILE_FORMATS)
        for each in (listing, get, set_, delete, imp, exp):
            add_actor_arguments(each)

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = get_tenant(options["tenant"])
        command = options["subcommand"]
        needed = "variable.view" if command == "list" else "variable.edit"
        actor = command_actor(tenant=tenant, username=options.get("as_user"), action=needed)
        try:
            if command == "list":
                for key in Variable.objects.for_tenant(tenant).order_by("key").values_list("key", flat=True):
                    self.stdout.write(key)
            elif command == "get":
                value = services.get_variable(tenant=tenant, key=options["key"], actor=actor)
                if value is None:
                    raise CommandError(f"Variable {options['key']} does not exist")
                self.stdout.write(json.dumps(json.loads(value), indent=2) if options["json"] else value)
            elif command == "set":
                if options["json"]:
                    json.loads(options["value"])
                services.set_variable(
                    tenant=tenant,
                    actor=actor,
                    key=options["key"],
                    value=options["value"],
                    description=options["description"],
                )
                self.stdout.write(f"Variable {options['key']} created")
            elif command == "delete":
                services.delete_variable(tenant=tenant, actor=actor, key=options["key"])
                self.stdout.write(f"Variable {options['key']} deleted")
            elif command == "import":
                path = Path(options["file"])
                if not path.is_file():
                    raise CommandError(f"Missing variables file: {path}")
                fmt = formats.file_format(path, options["format"])
                items = formats.parse_variables(path.read_text(encoding="utf-8"), fmt)
                counts = services.import_variables(
                    tenant=tenant, actor=actor, items=items, on_existing=options["action_on_existing_key"]
                )
                self.stdout.write(
                    f"{counts['created'] + counts['updated']} of {len(items)} variables successfully imported "
                    f"({counts['created']} created, {counts['updated']} updated, {counts['skipped']} skipped)."
                )
            elif command == "export":
                fmt = formats.file_format(
                    Path(options["file"]), options["format"] or ("json" if options["file"] == "-" else None)
                )
                text = formats.dump_variables(services.export_variables(tenant=tenant, actor=actor), fmt)
                if options["file"] == "-":
                    self.stdout.write(text, ending="")
                else:
                    Path(options["file"]).write_text(text, encoding="utf-8")
                    self.stdout.write(f"Variables successfully exported to {options['file']}.")
        except ValueError as error:
            raise CommandError(f"invalid JSON: {error}") from error
        except DomainError as error:
            raise CommandError(str(error)) from error
