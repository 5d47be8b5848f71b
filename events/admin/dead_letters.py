"""The dead letter admin: what subscriptions set aside after `max_deliveries`, to read,
replay to their subscription (`events.catalog.dead_letters.replay`) or discard.

Dead letters are records of what happened: nothing about one is edited. Replaying needs
the model's change permission, discarding its delete permission.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import orjson
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from events.admin.views import REDIS_ERRORS, permitted_object
from events.catalog import dead_letters
from events.models import DeadLetter

logger = logging.getLogger(__name__)


def pretty_body(body: str) -> str:
    """The event JSON indented for reading; the text as it is if it is not JSON."""
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return body


def replay_summary(replayed: int, already: int) -> str:
    """The message after a replay: how many went to their subscription, how many had."""
    if replayed == 1:
        text = "1 dead letter was replayed"
    else:
        text = f"{replayed} dead letters were replayed"
    if already:
        text += f"; {already} {'was' if already == 1 else 'were'} replayed already"
    return text + "."


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = (
        "subscription_name",
        "event_type",
        "partition",
        "offset",
        "deliveries",
        "reason",
        "status",
        "created_at",
    )
    list_display_links = ("offset",)
    list_filter = (
        ("subscription", admin.RelatedOnlyFieldListFilter),
        ("event_type", admin.RelatedOnlyFieldListFilter),
        "status",
        "reason",
        "created_at",
    )
    list_select_related = ("subscription", "event_type")
    search_fields = ("offset", "body")
    date_hierarchy = "created_at"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "subscription",
                    "event_type",
                    ("partition", "offset"),
                    ("deliveries", "reason"),
                    ("status", "created_at", "replayed_at"),
                )
            },
        ),
        ("Event", {"fields": ("event",)}),
    )
    readonly_fields = ("event",)
    actions = ("replay",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # only delivery sets events aside

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a record: read, replayed or discarded, never edited

    def has_replay_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        """Replay first; Django's delete (with its confirmation page) is "Discard"."""
        actions = super().get_actions(request)
        delete = actions.pop("delete_selected", None)
        if delete is not None:
            func, name, _ = delete
            actions[name] = (func, name, "Discard the selected dead letters")
        return actions

    def get_urls(self) -> list[URLPattern]:
        replay = self.admin_site.admin_view(require_POST(self.replay_view))
        return [
            path("<path:object_id>/replay/", replay, name="events_deadletter_replay"),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = {**(extra_context or {})}
        context["has_replay_permission"] = self.has_replay_permission(request)
        return super().change_view(request, object_id, form_url, context)

    def delete_model(self, request: HttpRequest, obj: DeadLetter) -> None:
        dead_letters.discard([obj])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        dead_letters.discard(queryset)

    @admin.display(description="subscription", ordering="subscription__owning_application")
    def subscription_name(self, obj: DeadLetter) -> SafeString:
        """Its application and consumer group; the id (long) only on hovering."""
        subscription = obj.subscription
        return format_html(
            '<span title="{}">{}/{}</span>',
            subscription.pk,
            subscription.owning_application,
            subscription.consumer_group,
        )

    @admin.display(description="event")
    def event(self, obj: DeadLetter) -> SafeString:
        return format_html('<pre id="dead-letter-event">{}</pre>', pretty_body(obj.body))

    @admin.action(description="Replay to its subscription", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        self._replay(request, queryset.select_related("event_type", "subscription"))

    def replay_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The change page's "Replay" button (POST only), back to that page."""
        dead_letter = permitted_object(self, request, object_id, self.has_replay_permission)
        self._replay(request, [dead_letter])
        return HttpResponseRedirect(
            reverse("admin:events_deadletter_change", args=[dead_letter.pk])
        )

    def _replay(self, request: HttpRequest, chosen: Iterable[DeadLetter]) -> None:
        """Replay each one; the outcome in a message and each row's history. Stops at the
        first Redis error (that row stays dead: `dead_letters.replay` puts it back).
        """
        replayed = already = 0
        for dead_letter in chosen:
            try:
                offset = dead_letters.replay(dead_letter)
            except REDIS_ERRORS as error:
                logger.warning("Redis unavailable to replay %s: %s", dead_letter.pk, error)
                self.message_user(
                    request,
                    f"Redis is not answering ({error}); {replay_summary(replayed, already)} "
                    "The others were not replayed.",
                    messages.ERROR,
                )
                return
            if offset is None:
                already += 1
                continue
            replayed += 1
            self.log_change(request, dead_letter, f"Replayed to its subscription at {offset}.")
        level = messages.SUCCESS if replayed else messages.WARNING
        self.message_user(request, replay_summary(replayed, already), level)
