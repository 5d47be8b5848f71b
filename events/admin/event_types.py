"""The event type admin: event types with live partition offsets from Redis, and their
schema history.

Event type changes go through the API's own rules (`events.admin.forms.EventTypeForm`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.options import InlineModelAdmin
from django.db.models import QuerySet
from django.forms import Form
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from events.admin.durations import format_duration
from events.admin.forms import EventTypeForm, pretty_schema
from events.admin.views import REDIS_ERRORS
from events.catalog import event_types
from events.models import EventType, EventTypeSchema
from events.store.partitions import delete_partitions, partition_info

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldOpts, _FieldsetSpec

PARTITIONING_FIELDSET: tuple[str, _FieldOpts] = (
    "Partitioning",
    {
        "fields": (
            "partition_count",
            "partition_strategy",
            "partition_key_fields",
            "ordering_key_fields",
        )
    },
)
ADD_FIELDSETS: _FieldsetSpec = (
    (
        "Identity",
        {"fields": ("name", "owning_application", "category", "audience", "authorization")},
    ),
    PARTITIONING_FIELDSET,
    ("Schema", {"fields": ("schema", "compatibility_mode")}),
    ("Retention", {"fields": ("retention_time_ms", "retention_max_events", "cleanup_policy")}),
)
CHANGE_FIELDSETS: _FieldsetSpec = (
    (
        "Identity",
        {
            "fields": (
                "name",
                "owning_application",
                "category",
                "enrichment_strategies",
                "audience",
                "authorization",
            )
        },
    ),
    PARTITIONING_FIELDSET,
    (
        "Partitions (live from Redis)",
        {
            "fields": ("partitions",),
            "description": "Offsets are Redis entry ids, read when this page was loaded.",
        },
    ),
    ("Schema", {"fields": ("schema", "compatibility_mode", "schema_version", "schema_created_at")}),
    ("Retention", {"fields": ("retention_time_ms", "retention_max_events", "cleanup_policy")}),
    (
        "Record",
        {"fields": ("default_statistic", "created_at", "updated_at"), "classes": ("collapse",)},
    ),
)


class SchemaHistoryInline(admin.TabularInline):
    """Every schema version of the event type, newest first; history is never edited."""

    model = EventTypeSchema
    verbose_name = "schema version"
    verbose_name_plural = "Schema history"
    fields = ("version", "created_at", "schema_text")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="schema")
    def schema_text(self, row: EventTypeSchema) -> SafeString:
        return format_html(
            "<details><summary><code>{}</code></summary><pre>{}</pre></details>",
            _shorten(row.schema, 80),
            pretty_schema(row.schema),
        )


@admin.register(EventType)
class EventTypeAdmin(admin.ModelAdmin):
    form = EventTypeForm
    list_display = (
        "name",
        "owning_application",
        "category",
        "partition_count",
        "retention",
        "schema_version",
        "updated_at",
    )
    list_filter = ("category", "partition_strategy", "compatibility_mode", "owning_application")
    search_fields = ("name", "owning_application")

    def get_fieldsets(self, request: HttpRequest, obj: EventType | None = None) -> _FieldsetSpec:
        return ADD_FIELDSETS if obj is None else CHANGE_FIELDSETS

    def get_inlines(
        self, request: HttpRequest, obj: EventType | None = None
    ) -> list[type[InlineModelAdmin]]:
        return [] if obj is None else [SchemaHistoryInline]

    def get_readonly_fields(
        self, request: HttpRequest, obj: EventType | None = None
    ) -> tuple[str, ...]:
        if obj is None:
            return ()
        # What Nakadi's PUT may never change, and what only the rules themselves set.
        return (
            "name",
            "category",
            "enrichment_strategies",
            "partition_count",
            "schema_version",
            "schema_created_at",
            "cleanup_policy",
            "default_statistic",
            "created_at",
            "updated_at",
            "partitions",
        )

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> EventType | None:
        """The row; locked when posting, so the evolution check sees what it changes (as PUT)."""
        obj = super().get_object(request, object_id, from_field)
        if obj is not None and request.method == "POST":
            obj = EventType.objects.select_for_update().get(pk=obj.pk)
        return obj

    def save_model(self, request: HttpRequest, obj: EventType, form: Form, change: bool) -> None:
        """Save, and record a schema version whenever the rules earned a new one."""
        assert isinstance(form, EventTypeForm)
        obj.save()
        if change and "schema_version" not in form.changed_fields:
            return
        event_types.record_schema(obj)
        if change:
            messages.info(
                request,
                f"The schema of {obj.name} is now version "
                f"{obj.schema_version} (was {form.previous_version}).",
            )

    def delete_model(self, request: HttpRequest, obj: EventType) -> None:
        super().delete_model(request, obj)
        _drop_logs(request, [(obj.name, obj.store_id, obj.partition_count)])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[EventType]) -> None:
        doomed = list(queryset.values_list("name", "store_id", "partition_count"))
        super().delete_queryset(request, queryset)
        _drop_logs(request, doomed)

    @admin.display(description="retention", ordering="retention_time_ms")
    def retention(self, obj: EventType) -> str:
        text = format_duration(obj.retention_time_ms)
        if obj.retention_max_events:
            text += f", at most {obj.retention_max_events:,} events"
        return text

    @admin.display(description="partitions")
    def partitions(self, obj: EventType) -> SafeString:
        """Each partition's offsets and length, read from Redis now; the error if it fails."""
        try:
            infos = partition_info(obj.store_id, range(obj.partition_count))
        except REDIS_ERRORS as error:
            logger.warning("Redis unavailable for the partitions of %s: %s", obj.name, error)
            return format_html(
                '<p class="errornote" id="partitions-error">Redis is unavailable: {}</p>', error
            )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
            (
                (i.partition, i.oldest_available_offset, i.newest_available_offset, i.length)
                for i in infos
            ),
        )
        return format_html(
            '<table id="partitions"><thead><tr><th>partition</th>'
            "<th>oldest offset</th><th>newest offset</th><th>length</th>"
            "</tr></thead><tbody>{}</tbody></table>",
            rows,
        )


def _drop_logs(request: HttpRequest, doomed: Iterable[tuple[str, str, int]]) -> None:
    """Delete the partition logs of deleted event types; a warning if Redis fails."""
    for name, store_id, partition_count in doomed:
        try:
            delete_partitions(store_id, partition_count)
        except REDIS_ERRORS as error:
            messages.warning(
                request,
                f"The streams of {name} could not be deleted from Redis "
                f"({error}); its events stay until retention trims them.",
            )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
