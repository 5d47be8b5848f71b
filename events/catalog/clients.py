"""Creating API clients with their grants: shared by `createclient`, the admin and tests."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from events.models import Client, Grant


@transaction.atomic
def create_client(
    name: str,
    *,
    is_admin: bool = False,
    publish: Iterable[str] = (),
    read: Iterable[str] = (),
    consume: Iterable[str] = (),
    token_label: str = "",
) -> tuple[Client, str]:
    """A new client with the given grants (event-type names or globs) and its first token."""
    client = Client.objects.create(name=name, is_admin=is_admin)
    for action, patterns in (
        (Grant.Action.PUBLISH, publish),
        (Grant.Action.READ, read),
        (Grant.Action.CONSUME, consume),
    ):
        for pattern in dict.fromkeys(patterns):
            Grant.objects.create(client=client, action=action, pattern=pattern)
    return client, client.issue_token(token_label)
