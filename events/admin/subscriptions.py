"""The subscription admin: create and edit subscriptions, see their committed cursors and
live state in Redis (sessions, owners, lag), and reset their cursors.

Creation goes through the API's rules (`events.admin.forms.SubscriptionForm`) and initializes
the cursors at once, as `POST /api/subscriptions` does; a reset is the API's PATCH
(`events.streaming.lifecycle.reset_cursors`), so sessions close with `cursor_reset` either
way.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import InlineModelAdmin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.safestring import SafeString

from events.admin.forms import Position, ResetCursorsForm, SubscriptionForm
from events.admin.views import REDIS_ERRORS, permitted_object
from events.catalog import committed, plans
from events.catalog.subscriptions import ANNOTATION_OF
from events.core.offsets import Cursor
from events.core.plan import Plan
from events.core.problems import Problem
from events.models import CommittedCursor, Subscription
from events.store import lag, partitions, sessions, stats
from events.store.connections import redis_client
from events.streaming import lifecycle

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldsetSpec

logger = logging.getLogger(__name__)

# The identity and starting point are fixed once created, as in Nakadi.
IDENTITY_FIELDS = (
    "id",
    "owning_application",
    "event_types",
    "consumer_group",
    "read_from",
    "initial_cursors",
)

DELIVERY_FIELDS = (
    "mode",
    "commit_timeout",
    "max_deliveries",
    "unprocessable_event_policy",
    "ack_timeout",
    "topics",
)

CHANGE_FIELDSETS: _FieldsetSpec = (
    ("Identity (fixed once created)", {"fields": IDENTITY_FIELDS}),
    ("Delivery", {"fields": DELIVERY_FIELDS}),
    (
        "Annotations",
        {
            "fields": ("annotations",),
            "description": "As the client sent them (PUT /api/subscriptions/{id} changes "
            "them). Nakadi's dead-letter annotations set max_deliveries and the "
            "unprocessable-event policy, which are then read-only here.",
        },
    ),
    (
        "Live state (from Redis)",
        {
            "fields": ("live_state",),
            "description": "Read from Redis when this page was loaded. Offsets are Redis "
            "entry ids; a session id is the X-Nakadi-StreamId its client was given.",
        },
    ),
    ("Lag (as of the last stats run)", {"fields": ("recorded_lag",)}),
    ("Record", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
)


@dataclass(frozen=True)
class LiveState:
    partitions: list[stats.PartitionStats]
    sessions: list[tuple[str, int]]  # (live session id, partitions it owns), by id


def read_live_state(subscription: Subscription) -> LiveState:
    """What Redis says of the subscription now; raises Redis's errors."""
    plan = plans.of(subscription)
    partitions = stats.partition_stats(plan)
    client = redis_client()
    live = sessions.live_sync(client, plan.subscription)
    owned = Counter(s.session for s in partitions if s.state == "assigned")
    return LiveState(partitions, [(session, owned[session]) for session in live])


def newest_offsets(plan: Plan) -> dict[Position, str]:
    """The newest offset of each partition of the plan, in its order; one read per type."""
    by_type: dict[tuple[str, str], list[int]] = {}
    for p in plan.partitions:
        by_type.setdefault((p.event_type, p.store_id), []).append(p.partition)
    newest = {
        (name, info.partition): info.newest_available_offset
        for (name, store_id), numbers in by_type.items()
        for info in partitions.partition_info(store_id, numbers)
    }
    return {p.position: newest[p.position] for p in plan.partitions}


class CursorInline(admin.TabularInline):
    """The committed cursors, read-only: move them with "Reset cursors"."""

    model = CommittedCursor
    verbose_name = "committed cursor"
    extra = 0
    can_delete = False
    fields = ("event_type", "partition", "offset", "committed_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SubscriptionAdminForm(SubscriptionForm):
    """The API's form, with the unprocessable-event policy (checked by the same rules)."""

    class Meta(SubscriptionForm.Meta):
        fields = [*SubscriptionForm.Meta.fields, "unprocessable_event_policy"]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    form = SubscriptionAdminForm
    list_display = (
        "id",
        "owning_application",
        "consumer_group",
        "types",
        "mode",
        "read_from",
        "created_at",
    )
    list_filter = ("mode", "read_from", "owning_application")
    search_fields = ("owning_application", "consumer_group", "event_types__name", "id")
    filter_horizontal = ("event_types",)
    actions = ("reset_cursors",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Subscription]:
        return super().get_queryset(request).prefetch_related("event_types")

    def get_fieldsets(self, request: HttpRequest, obj: Subscription | None = None) -> _FieldsetSpec:
        return super().get_fieldsets(request, obj) if obj is None else CHANGE_FIELDSETS

    def get_inlines(
        self, request: HttpRequest, obj: Subscription | None = None
    ) -> list[type[InlineModelAdmin]]:
        return [] if obj is None else [CursorInline]

    def get_readonly_fields(
        self, request: HttpRequest, obj: Subscription | None = None
    ) -> tuple[str, ...]:
        if obj is None:
            return ()
        annotated = [key for key, name in ANNOTATION_OF.items() if name in obj.annotations]
        return (
            *IDENTITY_FIELDS,
            *annotated,  # one source of truth: the client's annotations
            "annotations",
            "created_at",
            "updated_at",
            "live_state",
            "recorded_lag",
        )

    def get_urls(self) -> list[URLPattern]:
        reset = self.admin_site.admin_view(self.reset_cursors_view)
        return [
            path(
                "<path:object_id>/reset-cursors/",
                reset,
                name="events_subscription_reset_cursors",
            ),
            *super().get_urls(),
        ]

    def save_related(
        self, request: HttpRequest, form: ModelForm, formsets: Any, change: bool
    ) -> None:
        """Save the event types, then (on creation) the cursors: read_from "end" means the
        end as of now, as through the API.
        """
        super().save_related(request, form, formsets, change)
        if change:
            return
        subscription = form.instance
        try:
            committed.initialize(subscription)
        except REDIS_ERRORS as error:
            logger.warning("Redis unavailable to initialize %s: %s", subscription.pk, error)
            messages.warning(
                request,
                f"Redis is not answering ({error}): the cursors of {subscription} are set "
                "when it is first read, so a read_from of end means the end at that time.",
            )

    def delete_model(self, request: HttpRequest, obj: Subscription) -> None:
        with _forgetting(request, [obj]):
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        with _forgetting(request, list(queryset)):
            super().delete_queryset(request, queryset)

    @admin.display(description="event types")
    def types(self, obj: Subscription) -> str:
        return ", ".join(sorted(et.name for et in obj.event_types.all()))

    @admin.display(description="live state")
    def live_state(self, obj: Subscription) -> SafeString:
        """Each partition's owner, committed offset and lag, and the live sessions, read
        from Redis now; "Redis is not answering" if that fails.
        """
        context: dict[str, Any] = {"subscription": obj}
        try:
            context["live"] = read_live_state(obj)
        except REDIS_ERRORS as error:
            logger.warning("Redis unavailable for the live state of %s: %s", obj.pk, error)
            context["error"] = error
        return render_to_string("admin/events/subscription/live_state.html", context)

    @admin.display(description="lag")
    def recorded_lag(self, obj: Subscription) -> SafeString:
        """What the `stats` job last measured (as /metrics reports it), and when."""
        context: dict[str, Any] = {}
        try:
            context["recorded"] = recorded = lag.of_subscription(redis_client(), str(obj.pk))
        except REDIS_ERRORS as error:
            context["error"] = error
        else:
            if recorded is not None:
                context["at"] = datetime.fromtimestamp(recorded["at"] / 1000, tz=UTC)
        return render_to_string("admin/events/subscription/recorded_lag.html", context)

    @admin.action(description="Reset cursors of the selected subscriptions", permissions=["change"])
    def reset_cursors(
        self, request: HttpRequest, queryset: QuerySet[Subscription]
    ) -> HttpResponse | None:
        """Ask where to (back to the change list on this form), then reset."""
        subscriptions = list(queryset)
        hidden = [
            ("action", "reset_cursors"),
            *((ACTION_CHECKBOX_NAME, str(s.pk)) for s in subscriptions),
        ]
        return self._reset(request, subscriptions, hidden)

    def reset_cursors_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The same as the action, for one subscription, from its change page."""
        subscription = permitted_object(self, request, object_id, self.has_change_permission)
        response = self._reset(request, [subscription], hidden=[])
        if response is not None:
            return response
        return HttpResponseRedirect(
            reverse("admin:events_subscription_change", args=[subscription.pk])
        )

    def _reset(
        self, request: HttpRequest, subscriptions: list[Subscription], hidden: list[tuple[str, str]]
    ) -> HttpResponse | None:
        """The confirmation page; once confirmed, the resets and None (their outcome is in
        messages). Offsets of "end" are the newest when the operator confirms.
        """
        try:
            targets = [(s, plans.of(s)) for s in subscriptions]
            newest = {s.pk: newest_offsets(plan) for s, plan in targets}
        except REDIS_ERRORS as error:
            self.message_user(
                request, f"Redis is not answering ({error}); no cursor was reset.", messages.ERROR
            )
            return None
        confirmed = request.method == "POST" and "apply" in request.POST
        forms = [
            (
                s,
                plan,
                ResetCursorsForm(
                    request.POST if confirmed else None,
                    prefix=str(s.pk),
                    committed=plan.offsets,
                    newest=newest[s.pk],
                ),
            )
            for s, plan in targets
        ]
        if confirmed and all([form.is_valid() for _, _, form in forms]):
            for subscription, plan, form in forms:
                self._apply(request, subscription, plan, form.cursors())
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "forms": [(s, form) for s, _, form in forms],
            "hidden": hidden,
            "title": "Reset cursors",
            "original": subscriptions[0] if not hidden else None,
        }
        return TemplateResponse(request, "admin/events/subscription/reset_cursors.html", context)

    def _apply(
        self, request: HttpRequest, subscription: Subscription, plan: Plan, cursors: list[Cursor]
    ) -> None:
        """One reset, reported in a message and the subscription's history."""
        try:
            lifecycle.reset_cursors(plan, cursors)
        except Problem as problem:
            self.message_user(request, f"{subscription}: {problem.detail}", messages.ERROR)
            return
        except REDIS_ERRORS as error:
            self.message_user(
                request,
                f"{subscription}: Redis is not answering ({error}); the reset may be "
                "incomplete: check its cursors and reset them again.",
                messages.ERROR,
            )
            return
        moves = ", ".join(f"{c.event_type}/{c.partition} to {c.offset}" for c in cursors)
        self.log_change(request, subscription, f"Reset cursors: {moves}.")
        self.message_user(
            request,
            f"The cursors of {subscription} were reset ({moves}); its sessions were closed "
            "with cursor_reset.",
            messages.SUCCESS,
        )


@contextlib.contextmanager
def _forgetting(request: HttpRequest, subscriptions: list[Subscription]) -> Iterator[None]:
    """Around a delete: close the sessions of the deleted subscriptions and drop their
    groups and leases, as the API's DELETE does; a warning if Redis fails (leases lapse,
    groups stay).
    """
    try:
        with lifecycle.deleting(subscriptions):
            yield
    except REDIS_ERRORS as error:
        messages.warning(
            request,
            f"Redis is not answering ({error}): sessions of the deleted subscriptions end "
            "when their leases lapse, and their consumer groups stay in Redis.",
        )
