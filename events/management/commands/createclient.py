"""`manage.py createclient NAME …`: a new API client; its token is the last line printed."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from events.catalog.clients import create_client
from events.models import Client


class Command(BaseCommand):
    help = (
        "Create an API client with grants and print its new token on the last line. "
        "With --new-token, issue another token to an existing client."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--admin", action="store_true", help="may administer everything")
        parser.add_argument(
            "--publish",
            action="append",
            default=[],
            metavar="TYPE",
            help="may publish to (and define) TYPE; a glob such as 'orders.*'",
        )
        parser.add_argument(
            "--read", action="append", default=[], metavar="TYPE", help="may read TYPE"
        )
        parser.add_argument(
            "--consume",
            action="append",
            default=[],
            metavar="TYPE",
            help="may consume subscriptions of TYPE",
        )
        parser.add_argument("--label", default="", help="a note kept with the token")
        parser.add_argument(
            "--new-token", action="store_true", help="issue another token to an existing client"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name: str = options["name"]
        if options["new_token"]:
            client = Client.objects.filter(name=name).first()
            if client is None:
                raise CommandError(f"No client named {name!r}.")
            token = client.issue_token(options["label"])
        else:
            if Client.objects.filter(name=name).exists():
                raise CommandError(
                    f"A client named {name!r} exists; use --new-token to give it another token."
                )
            client, token = create_client(
                name,
                is_admin=options["admin"],
                publish=options["publish"],
                read=options["read"],
                consume=options["consume"],
                token_label=options["label"],
            )
        grants = ", ".join(f"{g.action} {g.pattern}" for g in client.grants.all())
        self.stdout.write(
            f"Client {client.name!r}"
            + (" (admin)" if client.is_admin else "")
            + (f" with grants: {grants}" if grants else "")
        )
        self.stdout.write(
            "Its API token, shown only now (send it as 'Authorization: Bearer <token>'):"
        )
        self.stdout.write(token)
