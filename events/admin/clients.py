"""The client admin: applications that call the API, their grants and tokens. Tokens are
shown once, on the page that created them, and stored only as digests.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import InlineModelAdmin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.html import format_html
from django.utils.safestring import SafeString

from events.admin.forms import CreateTokenForm
from events.admin.views import permitted_object
from events.models import ApiToken, Client, Grant, token_digest


class GrantInline(admin.TabularInline):
    model = Grant
    fields = ("action", "pattern")
    extra = 1


class ApiTokenInline(admin.TabularInline):
    """A client's tokens: only the hint is ever shown; revoking is the one edit."""

    model = ApiToken
    verbose_name = "API token"
    fields = ("hint_text", "label", "created_at", "revoked")
    readonly_fields = ("hint_text", "label", "created_at")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # tokens are created with "Create token", which shows them once

    @admin.display(description="token")
    def hint_text(self, token: ApiToken) -> SafeString:
        return format_html("<code>{}…</code>", token.hint)


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ("name", "is_admin", "grant_summary", "active_tokens", "user", "created_at")
    list_filter = ("is_admin",)
    search_fields = ("name", "description", "grants__pattern", "user__username")
    # `user`: who acts as this client in the browser, by the session (README, "Browsers").
    fields = ("name", "is_admin", "description", "user")
    autocomplete_fields = ("user",)
    actions = ("create_tokens",)

    def get_inlines(
        self, request: HttpRequest, obj: Client | None = None
    ) -> list[type[InlineModelAdmin]]:
        return [GrantInline] if obj is None else [GrantInline, ApiTokenInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Client]:
        return (
            super()
            .get_queryset(request)
            .select_related("user")
            .prefetch_related("grants", "tokens")
        )

    def get_urls(self) -> list[URLPattern]:
        create_token = self.admin_site.admin_view(self.create_token_view)
        return [
            path("<path:object_id>/create-token/", create_token, name="events_client_create_token"),
            *super().get_urls(),
        ]

    @admin.display(description="grants")
    def grant_summary(self, client: Client) -> str:
        if client.is_admin:
            return "admin: everything"
        by_action: dict[str, list[str]] = {}
        for grant in client.grants.all():
            by_action.setdefault(grant.action, []).append(grant.pattern)
        return (
            " · ".join(
                f"{action} {', '.join(sorted(patterns))}"
                for action, patterns in sorted(by_action.items())
            )
            or "none"
        )

    @admin.display(description="active tokens")
    def active_tokens(self, client: Client) -> int:
        return sum(not token.revoked for token in client.tokens.all())

    @admin.action(description="Create a token for each selected client", permissions=["change"])
    def create_tokens(self, request: HttpRequest, queryset: QuerySet[Client]) -> HttpResponse:
        return self._issue_tokens(request, list(queryset), label="")

    def create_token_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: ask for a label; POST: create the token and show it, this once."""
        client = permitted_object(self, request, object_id, self.has_change_permission)
        form = CreateTokenForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            return self._issue_tokens(request, [client], label=form.cleaned_data["label"])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": client,
            "form": form,
            "title": "Create a token",
            "subtitle": client.name,
        }
        return TemplateResponse(request, "admin/events/client/create_token.html", context)

    def response_add(
        self, request: HttpRequest, obj: Client, post_url_continue: str | None = None
    ) -> HttpResponse:
        if "_create_token" in request.POST:
            return self._issue_tokens(request, [obj], label="")
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request: HttpRequest, obj: Client) -> HttpResponse:
        if "_create_token" in request.POST:
            return self._issue_tokens(request, [obj], label="")
        return super().response_change(request, obj)

    def _issue_tokens(
        self, request: HttpRequest, clients: list[Client], label: str
    ) -> HttpResponse:
        """New tokens, shown on this response only: never in a message, a cookie or a log."""
        with transaction.atomic():
            issued = [(client, client.issue_token(label)) for client in clients]
            for client, token in issued:
                hint = ApiToken.objects.get(digest=token_digest(token)).hint
                self.log_change(request, client, f"Created API token {hint}…")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "issued": issued,
            "title": "Copy the new token now" if len(issued) == 1 else "Copy the new tokens now",
        }
        return TemplateResponse(request, "admin/events/client/token_created.html", context)
