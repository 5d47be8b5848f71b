from __future__ import annotations

from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Streamsite"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from events.catalog import snapshots

        snapshots.connect_signals()
