"""The admin, through Django's test client logged in as a superuser (`admin_client`)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from events.admin.durations import format_duration, parse_duration
from events.catalog.clients import create_client
from events.models import ApiToken, Client, EventType, EventTypeSchema
from events.store import partitions
from streamsite.processes import free_port
from tests.conftest import bearer
from tests.helpers import ORDER_SCHEMA, business_event, event_type_body

pytestmark = pytest.mark.django_db

TOKEN_RE = re.compile(r"ss_[A-Za-z0-9_-]{40,}")


def create_event_type(client, token: str, **kwargs: Any) -> EventType:
    response = client.post(
        "/api/event-types",
        orjson.dumps(event_type_body(**kwargs)),
        content_type="application/json",
        **bearer(token),
    )
    assert response.status_code == 201, response.content
    return EventType.objects.get(name=response.json()["name"])


def publish(client, token: str, name: str, events: list[dict[str, Any]]) -> None:
    response = client.post(
        f"/api/event-types/{name}/events",
        orjson.dumps(events),
        content_type="application/json",
        **bearer(token),
    )
    assert response.status_code == 200, response.content


def change_url(obj: EventType | Client) -> str:
    return reverse(f"admin:events_{obj._meta.model_name}_change", args=[obj.pk])


def form_data(response) -> dict[str, Any]:
    """The POST body the admin change page would send back unchanged, inlines included."""
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    data: dict[str, Any] = {}
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if value is None or value is False:
                continue
            data[form[name].html_name] = "on" if value is True else value
    return data


def edit_schema(admin_client, row: EventType, schema: dict[str, Any] | str, **changes: Any):
    page = admin_client.get(change_url(row))
    text = schema if isinstance(schema, str) else orjson.dumps(schema).decode()
    return admin_client.post(change_url(row), {**form_data(page), "schema": text, **changes})


def tokens_on(page) -> list[str]:
    return TOKEN_RE.findall(page.content.decode())


@pytest.fixture
def order_type(client, producer_token) -> EventType:
    return create_event_type(client, producer_token, partitions=2)


def test_the_site_is_called_streamsite(admin_client):
    page = admin_client.get("/admin/")
    assert page.status_code == 200
    assert "<title>Event bus administration | Streamsite</title>" in page.content.decode()


@pytest.mark.parametrize(
    "url",
    [
        "/admin/events/eventtype/",
        "/admin/events/eventtype/add/",
        "/admin/events/eventtype/?q=order&category__exact=business",
        "/admin/events/client/",
        "/admin/events/client/add/",
        "/admin/events/client/?is_admin__exact=0",
    ],
)
def test_the_changelists_and_add_pages_render(admin_client, order_type, url):
    page = admin_client.get(url)
    assert page.status_code == 200


def test_the_event_type_changelist_shows_its_columns(admin_client, order_type):
    EventType.objects.filter(pk=order_type.pk).update(
        retention_time_ms=36 * 3600 * 1000, retention_max_events=5000
    )
    html = admin_client.get("/admin/events/eventtype/").content.decode()
    for text in ("order.created", "shop", "business", "1d 12h, at most 5,000 events", "1.0.0"):
        assert text in html


def test_the_event_type_change_page_groups_its_fields(admin_client, order_type):
    page = admin_client.get(change_url(order_type))
    assert page.status_code == 200
    html = page.content.decode()
    for heading in (
        "Identity",
        "Partitioning",
        "Partitions (live from Redis)",
        "Schema",
        "Retention",
        "Schema history",
    ):
        assert re.search(rf">\s*{re.escape(heading)}\s*<", html), heading
    assert 'value="2d"' in html  # retention in readable units


def test_the_partitions_section_shows_live_offsets_and_lengths(
    admin_client, client, producer_token, order_type
):
    publish(client, producer_token, "order.created", [business_event(f"A-{i}") for i in range(5)])
    infos = partitions.partition_info(EventType.objects.get(name="order.created").store_id, [0, 1])
    assert sum(info.length for info in infos) == 5
    html = admin_client.get(change_url(order_type)).content.decode()
    table = html[html.index('<table id="partitions">') :]
    table = table[: table.index("</table>")]
    for info in infos:
        assert (
            f"<tr><td>{info.partition}</td><td><code>{info.oldest_available_offset}</code>"
            f"</td><td><code>{info.newest_available_offset}</code></td>"
            f"<td>{info.length}</td></tr>"
        ) in table


def test_the_partitions_section_shows_the_error_when_redis_is_down(
    admin_client, order_type, settings
):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    page = admin_client.get(change_url(order_type))
    assert page.status_code == 200
    assert 'id="partitions-error"' in page.content.decode()
    assert "Redis is unavailable" in page.content.decode()


def test_an_invalid_schema_is_refused_with_a_form_error_and_nothing_changes(
    admin_client, order_type
):
    before = EventType.objects.values().get(pk=order_type.pk)
    response = edit_schema(admin_client, order_type, '{"type": "nonsense"}')
    assert response.status_code == 200
    assert "Invalid schema: the schema is invalid" in str(
        response.context["adminform"].form.errors["schema"]
    )
    assert EventType.objects.values().get(pk=order_type.pk) == before
    assert EventTypeSchema.objects.filter(event_type=order_type).count() == 1


def test_a_schema_that_is_not_json_is_refused(admin_client, order_type):
    response = edit_schema(admin_client, order_type, "{not json")
    assert "not valid JSON" in str(response.context["adminform"].form.errors["schema"])
    assert EventType.objects.get().schema == order_type.schema


def test_an_incompatible_schema_change_is_refused_by_the_api_rules(admin_client, order_type):
    schema = {"type": "object", "properties": {"order_number": {"type": "string"}}}
    response = edit_schema(admin_client, order_type, schema)
    errors = str(response.context["adminform"].form.errors["schema"])
    assert "#/properties/amount: property removed" in errors
    assert "(not allowed in forward mode)" in errors
    assert EventType.objects.get().schema_version == "1.0.0"


def test_a_compatible_schema_change_bumps_the_version_and_records_it(
    admin_client, client, producer_token, order_type
):
    schema = {
        **ORDER_SCHEMA,
        "properties": {**ORDER_SCHEMA["properties"], "note": {"type": "string"}},
    }
    response = edit_schema(admin_client, order_type, schema)
    assert response.status_code == 302, response.context["adminform"].form.errors
    row = EventType.objects.get()
    assert row.schema_version == "1.1.0"
    assert orjson.loads(row.schema) == schema
    history = client.get("/api/event-types/order.created/schemas", **bearer(producer_token))
    assert [s["version"] for s in history.json()["items"]] == ["1.1.0", "1.0.0"]
    page = admin_client.get(change_url(row))
    assert "now version 1.1.0 (was 1.0.0)" in page.content.decode()


def test_saving_an_unchanged_form_keeps_the_version(admin_client, order_type):
    page = admin_client.get(change_url(order_type))
    response = admin_client.post(change_url(order_type), form_data(page))
    assert response.status_code == 302, response.context["adminform"].form.errors
    row = EventType.objects.get()
    assert (row.schema, row.schema_version) == (order_type.schema, "1.0.0")
    assert row.schemas.count() == 1


def test_a_compatibility_mode_may_only_get_stricter(admin_client, client, producer_token):
    row = create_event_type(client, producer_token, compatibility_mode="compatible")
    page = admin_client.get(change_url(row))
    response = admin_client.post(
        change_url(row), {**form_data(page), "compatibility_mode": "forward"}
    )
    assert "may only get stricter" in str(
        response.context["adminform"].form.errors["compatibility_mode"]
    )
    assert EventType.objects.get().compatibility_mode == "compatible"


def test_retention_is_edited_in_readable_units(admin_client, order_type):
    page = admin_client.get(change_url(order_type))
    response = admin_client.post(
        change_url(order_type), {**form_data(page), "retention_time_ms": "1d 12h"}
    )
    assert response.status_code == 302
    assert EventType.objects.get().retention_time_ms == 36 * 3600 * 1000
    response = admin_client.post(
        change_url(order_type), {**form_data(page), "retention_time_ms": "30s"}
    )
    assert "retention_time" in str(response.context["adminform"].form.errors)


def test_an_event_type_created_in_the_admin_is_what_the_api_would_create(
    admin_client, client, producer_token
):
    response = admin_client.post(
        "/admin/events/eventtype/add/",
        {
            "name": "order.shipped",
            "owning_application": "shop",
            "category": "business",
            "partition_count": "3",
            "partition_strategy": "hash",
            "partition_key_fields": "order_number",
            "ordering_key_fields": "",
            "schema": orjson.dumps(ORDER_SCHEMA).decode(),
            "compatibility_mode": "forward",
            "retention_time_ms": "2d",
            "authorization": "",
            "schemas-TOTAL_FORMS": "0",
            "schemas-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    body = client.get("/api/event-types/order.shipped", **bearer(producer_token)).json()
    assert body["number_of_partitions"] == 3
    assert body["enrichment_strategies"] == ["metadata_enrichment"]
    assert body["partition_key_fields"] == ["order_number"]
    assert body["schema"]["version"] == "1.0.0"
    assert body["options"]["retention_time"] == 2 * 24 * 3600 * 1000
    assert EventType.objects.get(name="order.shipped").schemas.count() == 1


def test_an_event_type_breaking_the_api_rules_is_refused_on_add(admin_client):
    response = admin_client.post(
        "/admin/events/eventtype/add/",
        {
            "name": "order.shipped",
            "owning_application": "shop",
            "category": "business",
            "partition_count": "1",
            "partition_strategy": "hash",
            "partition_key_fields": "",
            "schema": "{}",
            "compatibility_mode": "forward",
            "retention_time_ms": "2d",
            "authorization": "",
            "schemas-TOTAL_FORMS": "0",
            "schemas-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "partition_key_fields is required" in str(
        response.context["adminform"].form.errors["partition_key_fields"]
    )
    assert not EventType.objects.exists()


def test_deleting_an_event_type_drops_its_streams(admin_client, client, producer_token, order_type):
    publish(client, producer_token, "order.created", [business_event()])
    store_id = EventType.objects.get(name="order.created").store_id
    response = admin_client.post(
        reverse("admin:events_eventtype_delete", args=[order_type.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not EventType.objects.exists()
    assert all(info.length == 0 for info in partitions.partition_info(store_id, [0, 1]))


def test_the_client_changelist_summarizes_grants(admin_client, producer_token, admin_token):
    html = admin_client.get("/admin/events/client/").content.decode()
    assert "publish order.* · read order.*" in html
    assert "admin: everything" in html


def test_creating_a_token_shows_it_once_and_stores_only_its_digest(admin_client, db):
    shop, _ = create_client("shop", read=["order.*"])
    url = reverse("admin:events_client_create_token", args=[shop.pk])
    assert "Create token" in admin_client.get(url).content.decode()
    page = admin_client.post(url, {"label": "billing host"})
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    assert "will not be shown again" in page.content.decode()
    [token] = tokens_on(page)
    row = ApiToken.objects.get(client=shop, label="billing host")
    assert row.digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(ApiToken.objects.values().get(pk=row.pk))
    change_page = admin_client.get(change_url(shop)).content.decode()
    assert token not in change_page
    assert row.digest not in change_page
    assert f"{row.hint}…" in change_page
    assert admin_client.get("/api/event-types", **bearer(token)).status_code == 200


def test_a_staff_user_who_may_only_view_clients_cannot_create_tokens(client, db):
    shop, _ = create_client("shop")
    viewer = User.objects.create_user("viewer", password="a long viewer password", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_client"))
    client.force_login(viewer)
    page = client.get(change_url(shop))
    assert page.status_code == 200
    assert "Create token" not in page.content.decode()
    url = reverse("admin:events_client_create_token", args=[shop.pk])
    assert client.post(url, {"label": "sneaky"}).status_code == 403
    assert shop.tokens.count() == 1


def test_a_client_is_created_with_a_grant_and_a_token_in_one_step(admin_client, client):
    response = admin_client.post(
        "/admin/events/client/add/",
        {
            "name": "billing",
            "description": "",
            "_create_token": "Save and create token",
            "grants-TOTAL_FORMS": "1",
            "grants-INITIAL_FORMS": "0",
            "grants-0-action": "read",
            "grants-0-pattern": "order.*",
            "tokens-TOTAL_FORMS": "0",
            "tokens-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    [token] = tokens_on(response)
    billing = Client.objects.get(name="billing")
    assert list(billing.grants.values_list("action", "pattern")) == [("read", "order.*")]
    assert billing.tokens.get().digest == hashlib.sha256(token.encode()).hexdigest()
    assert client.get("/api/event-types", **bearer(token)).status_code == 200


def test_the_action_creates_a_token_for_each_selected_client(admin_client, client, db):
    clients = [create_client(name)[0] for name in ("one", "two")]
    response = admin_client.post(
        "/admin/events/client/",
        {"action": "create_tokens", "_selected_action": [c.pk for c in clients]},
    )
    tokens = tokens_on(response)
    assert len(tokens) == 2
    for token in tokens:
        assert client.get("/api/event-types", **bearer(token)).status_code == 200


def test_a_token_revoked_in_the_admin_stops_working(admin_client, client, db):
    shop, token = create_client("shop", read=["order.*"])
    page = admin_client.get(change_url(shop))
    response = admin_client.post(change_url(shop), {**form_data(page), "tokens-0-revoked": "on"})
    assert response.status_code == 302
    assert client.get("/api/event-types", **bearer(token)).status_code == 401


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (172_800_000, "2d"),
        (129_600_000, "1d 12h"),
        (5_400_000, "1h 30m"),
        (90_000, "1m 30s"),
        (1500, "1s 500ms"),
    ],
)
def test_durations_read_in_the_largest_units_and_parse_back(ms, text):
    assert format_duration(ms) == text
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["", "2 weeks", "d", "2d and more"])
def test_a_duration_in_unknown_units_is_refused(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_an_edit_in_the_admin_keeps_what_a_nakadi_tool_stored(admin_client, client, producer_token):
    """Annotations, labels and event_owner_selector are not on the form: saving keeps them."""
    kept = {
        "annotations": {"team": "checkout"},
        "labels": {"domain": "orders"},
        "event_owner_selector": {"type": "static", "name": "retailer_id", "value": "shop"},
    }
    row = create_event_type(client, producer_token, **kept)
    schema = {**ORDER_SCHEMA, "properties": {**ORDER_SCHEMA["properties"], "note": {}}}
    response = edit_schema(admin_client, row, schema)
    assert response.status_code == 302, response.context["adminform"].form.errors
    row.refresh_from_db()
    assert row.schema_version == "1.1.0"
    assert (row.annotations, row.labels, row.event_owner_selector) == tuple(kept.values())


ADD_COMPACTED = {
    "name": "stock.level",
    "owning_application": "shop",
    "partition_count": "1",
    "partition_strategy": "random",
    "ordering_key_fields": "",
    "schema": orjson.dumps(ORDER_SCHEMA).decode(),
    "compatibility_mode": "forward",
    "retention_time_ms": "2d",
    "authorization": "",
    "cleanup_policy": "compact",
    "schemas-TOTAL_FORMS": "0",
    "schemas-INITIAL_FORMS": "0",
}


def test_a_compacted_event_type_is_created_and_changed_in_the_admin(
    admin_client, client, producer_token
):
    response = admin_client.post(
        "/admin/events/eventtype/add/", {**ADD_COMPACTED, "category": "business"}
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    row = EventType.objects.get(name="stock.level")
    assert row.cleanup_policy == "compact"

    page = admin_client.get(change_url(row))  # the policy is shown, and kept by a change
    response = admin_client.post(change_url(row), {**form_data(page), "owning_application": "ops"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert EventType.objects.values_list("owning_application", "cleanup_policy").get() == (
        "ops",
        "compact",
    )


def test_an_undefined_compacted_event_type_is_refused_at_its_policy(admin_client):
    response = admin_client.post(
        "/admin/events/eventtype/add/", {**ADD_COMPACTED, "category": "undefined"}
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "not available for 'undefined'" in errors["cleanup_policy"][0]
    assert not EventType.objects.exists()
