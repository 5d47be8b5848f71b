"""Admin forms: event types and subscriptions validated by the API's own rules, tokens,
and where to reset a subscription's cursors.

The event type form builds the body a Nakadi client would PUT and runs it through
`events.catalog.event_types`, so the admin can never store what the API would refuse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from events.admin.durations import DurationField
from events.catalog import event_types, subscriptions
from events.core.offsets import BEGIN, Cursor, CursorError, parse_offset
from events.core.plan import Position
from events.core.problems import Problem
from events.core.topics import check_patterns
from events.models import EventType, Subscription


class NameListField(forms.CharField):
    """A list of field names (JSON paths), typed comma-separated."""

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value)
        return [name for name in re.split(r"[,\s]+", text or "") if name]


class OptionalJSONField(forms.JSONField):
    """JSON that may be left empty (stored as null), shown empty rather than as "null"."""

    def prepare_value(self, value: Any) -> Any:
        return "" if value is None else super().prepare_value(value)


def pretty_schema(text: str) -> str:
    """The schema indented for reading; the text itself when it is not valid JSON."""
    try:
        return orjson.dumps(orjson.loads(text), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return text


NEW_SCHEMA = '{\n  "type": "object",\n  "properties": {}\n}'

# Where a refusal of the API's rules is shown: the first field named in its detail.
_ERROR_FIELDS = (
    ("compatibility_mode", "compatibility_mode"),
    ("schema", "schema"),
    ("retention_time", "retention_time_ms"),
    ("retention_max_events", "retention_max_events"),
    ("cleanup_policy", "cleanup_policy"),
    ("partition_key_fields", "partition_key_fields"),
    ("partition_strategy", "partition_strategy"),
    ("user_defined", "partition_strategy"),
    ("name", "name"),
    ("owning_application", "owning_application"),
    ("enrichment", "category"),
    ("category", "category"),
)


class EventTypeForm(forms.ModelForm):
    """An event type checked by `event_types.parse`, and changed by `apply_update`.

    After a valid change, `changed_fields` names what changed ("schema_version" on a bump).
    """

    schema = forms.CharField(
        widget=forms.Textarea(
            attrs={
                "rows": 18,
                "cols": 90,
                "class": "vLargeTextField",
                "spellcheck": "false",
                "style": "font-family: monospace",
            }
        ),
        help_text="The JSON schema of the events. A change is judged by the compatibility "
        "mode and earns a new version, as through the API.",
    )
    partition_key_fields = NameListField(
        required=False, help_text="Comma-separated; only with the hash strategy."
    )
    ordering_key_fields = NameListField(required=False, help_text="Comma-separated.")
    authorization = OptionalJSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Nakadi's authorization object (admins, readers, writers); empty for none.",
    )
    retention_time_ms = DurationField(
        label="Retention time",
        help_text='e.g. "2d", "36h", "1d 12h"; at least 1m. Events older than this are trimmed.',
    )

    class Meta:
        model = EventType
        fields = (
            "name",
            "owning_application",
            "category",
            "audience",
            "authorization",
            "partition_count",
            "partition_strategy",
            "partition_key_fields",
            "ordering_key_fields",
            "schema",
            "compatibility_mode",
            "retention_time_ms",
            "retention_max_events",
            "cleanup_policy",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.changed_fields: list[str] = []
        self.previous_version = self.instance.schema_version
        if self.instance.pk is not None:
            self.initial["schema"] = pretty_schema(self.instance.schema)
        else:
            self.initial.setdefault("retention_time_ms", settings.DEFAULT_RETENTION_MS)
            self.initial.setdefault("schema", NEW_SCHEMA)
        if "cleanup_policy" in self.fields:  # on creation only; empty: "delete"
            self.fields["cleanup_policy"].required = False
        if "partition_count" in self.fields:
            self.fields["partition_count"].validators.append(_partition_count_in_range)
            self.fields[
                "partition_count"
            ].help_text = f"1 to {settings.MAX_PARTITIONS}; fixed once the event type exists."

    def clean_schema(self) -> str:
        """The typed schema; the stored text when it means the same JSON (no new version)."""
        text: str = self.cleaned_data["schema"].replace("\r\n", "\n")
        if self.instance.pk is not None:
            try:
                if orjson.loads(text) == orjson.loads(self.instance.schema):
                    return self.instance.schema
            except orjson.JSONDecodeError:
                pass
        return text

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if self.errors:
            return cleaned
        try:
            fields = event_types.parse(self._nakadi_body(cleaned))
            if self.instance.pk is None:
                fields["partition_count"] = cleaned["partition_count"]
                fields["default_statistic"] = None
                for key, value in fields.items():
                    setattr(self.instance, key, value)
            else:
                fields["partition_count"] = self.instance.partition_count
                fields["default_statistic"] = self.instance.default_statistic
                self.changed_fields = event_types.apply_update(self.instance, fields, admin=True)
        except Problem as problem:
            self.add_error(self._field_of(problem.detail), problem.detail)
            return cleaned
        # The normalized values, so that saving the form writes what the rules accepted.
        cleaned.update((key, value) for key, value in fields.items() if key in self.fields)
        return cleaned

    def _nakadi_body(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        """The PUT/POST body of this form: typed fields over the stored ones."""

        def value(key: str) -> Any:
            return cleaned[key] if key in cleaned else getattr(self.instance, key)

        category = value("category")
        return {
            "name": value("name"),
            "owning_application": value("owning_application"),
            "category": category,
            "enrichment_strategies": [] if category == "undefined" else ["metadata_enrichment"],
            "partition_strategy": value("partition_strategy"),
            "partition_key_fields": value("partition_key_fields"),
            "ordering_key_fields": value("ordering_key_fields"),
            "compatibility_mode": value("compatibility_mode"),
            "cleanup_policy": value("cleanup_policy"),
            "audience": value("audience") or None,
            "authorization": value("authorization"),
            **{k: value(k) for k in ("annotations", "labels", "event_owner_selector")},  # as is
            "schema": {"type": "json_schema", "schema": value("schema")},
            "default_statistic": None,
            "options": {
                "retention_time": value("retention_time_ms"),
                "retention_max_events": value("retention_max_events"),
            },
        }

    def _field_of(self, detail: str) -> str | None:
        for needle, field in _ERROR_FIELDS:
            if needle in detail and field in self.fields:
                return field
        return None


def _partition_count_in_range(count: int) -> None:
    if not 1 <= count <= settings.MAX_PARTITIONS:
        raise ValidationError(f"Between 1 and {settings.MAX_PARTITIONS} partitions.")


class CreateTokenForm(forms.Form):
    label = forms.CharField(
        max_length=255,
        required=False,
        help_text="What the token is for, e.g. the host or deployment that will use it.",
    )


class SubscriptionForm(forms.ModelForm):
    """A new subscription, checked by the API's own rules (`events.catalog.subscriptions.parse`);
    after creation only the delivery settings change, as its identity is fixed, and they may
    not skip after a single delivery (`subscriptions.check_delivery`), as through the API.
    """

    initial_cursors = forms.JSONField(
        required=False,
        help_text='With read_from "cursors": one {event_type, partition, offset} per partition.',
    )

    class Meta:
        model = Subscription
        fields = [
            "owning_application",
            "event_types",
            "consumer_group",
            "read_from",
            "initial_cursors",
            "mode",
            "commit_timeout",
            "max_deliveries",
            "ack_timeout",
            "topics",
        ]

    def clean_topics(self) -> list[str]:
        try:
            return check_patterns(self.cleaned_data.get("topics") or [])
        except ValueError as error:
            raise ValidationError(str(error)) from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.instance._state.adding and not self.errors:
            body = {key: cleaned.get(key) for key in self.Meta.fields if key != "event_types"}
            body["event_types"] = [et.name for et in cleaned.get("event_types") or []]
            body["initial_cursors"] = body["initial_cursors"] or []
            body["topics"] = body["topics"] or []
            try:
                checked = subscriptions.parse(body)
            except Problem as problem:
                raise ValidationError(problem.detail) from None
            if Subscription.objects.filter(identity=checked.identity).exists():
                raise ValidationError(
                    "A subscription of this application, event types and consumer group exists."
                )
            self.instance.identity = checked.identity
            cleaned["initial_cursors"] = checked.fields["initial_cursors"]
            cleaned["topics"] = checked.fields["topics"]
        elif not self.errors:  # a change: the settings as they would be saved
            delivery = [
                cleaned.get(key, getattr(self.instance, key))  # read-only here: as stored
                for key in ("max_deliveries", "unprocessable_event_policy")
            ]
            try:
                subscriptions.check_delivery(*delivery)
            except Problem as problem:
                raise ValidationError(problem.detail) from None
        return cleaned


class ResetCursorsForm(forms.Form):
    """Where to move one subscription's cursors: to the beginning, to the end, or to typed
    offsets (one field per partition; an empty field leaves its partition as it is).

    Built from the partitions' committed and newest offsets, in partition order; after
    validation, `cursors()` are the cursors to reset to.
    """

    TO_BEGIN, TO_END, TO_OFFSETS = "begin", "end", "offsets"
    target = forms.ChoiceField(
        choices=[
            (TO_BEGIN, "To the beginning: re-read every event still retained"),
            (TO_END, "To the end: skip every event published so far"),
            (TO_OFFSETS, "To the offsets typed below"),
        ],
        widget=forms.RadioSelect,
    )

    def __init__(
        self,
        *args: Any,
        committed: Mapping[Position, str],
        newest: Mapping[Position, str],
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.committed = committed
        self.newest = newest
        self.positions = list(newest)
        for i, (name, partition) in enumerate(self.positions):
            self.fields[f"offset_{i}"] = forms.CharField(
                required=False,
                label=f"{name} / {partition}",
                widget=forms.TextInput(
                    attrs={"placeholder": committed.get((name, partition), BEGIN), "size": 24}
                ),
            )

    def rows(self) -> list[tuple[Position, str, str, forms.BoundField]]:
        """(position, committed offset, newest offset, offset field) of each partition."""
        return [
            (
                position,
                self.committed.get(position, BEGIN),
                self.newest[position],
                self[f"offset_{i}"],
            )
            for i, position in enumerate(self.positions)
        ]

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if cleaned.get("target") != self.TO_OFFSETS:
            return cleaned
        typed = 0
        for i, position in enumerate(self.positions):
            offset = cleaned.get(f"offset_{i}", "").strip()
            if not offset:
                continue
            typed += 1
            try:
                after_newest = parse_offset(offset) > parse_offset(self.newest[position])
            except CursorError as error:
                self.add_error(f"offset_{i}", f"The {error}.")
                continue
            if after_newest:
                self.add_error(
                    f"offset_{i}", f"This is after the newest event ({self.newest[position]})."
                )
            cleaned[f"offset_{i}"] = offset
        if not typed:
            raise ValidationError("Type an offset for at least one partition.")
        return cleaned

    def cursors(self) -> list[Cursor]:
        """The cursors to reset to; only after `is_valid()`."""
        target = self.cleaned_data["target"]
        if target == self.TO_BEGIN:
            return [Cursor(name, p, BEGIN) for name, p in self.positions]
        if target == self.TO_END:
            return [Cursor(name, p, self.newest[(name, p)]) for name, p in self.positions]
        return [
            Cursor(name, p, self.cleaned_data[f"offset_{i}"])
            for i, (name, p) in enumerate(self.positions)
            if self.cleaned_data[f"offset_{i}"]
        ]
