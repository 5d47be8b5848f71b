"""Give every event type a random stream id for its Redis keys (add, fill, make unique)."""

import secrets

from django.db import migrations, models

import events.models


def fill_stream_ids(apps, schema_editor):
    EventType = apps.get_model("events", "EventType")
    for event_type in EventType.objects.filter(stream_id__isnull=True):
        event_type.stream_id = secrets.token_hex(8)
        event_type.save(update_fields=["stream_id"])


class Migration(migrations.Migration):
    dependencies = [("events", "0002_subscriptions")]

    operations = [
        migrations.AddField(
            model_name="eventtype",
            name="stream_id",
            field=models.CharField(max_length=32, null=True, editable=False),
        ),
        migrations.RunPython(fill_stream_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="eventtype",
            name="stream_id",
            field=models.CharField(
                max_length=32, unique=True, default=events.models.new_store_id, editable=False
            ),
        ),
    ]
