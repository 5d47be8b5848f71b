"""An event type keeps Nakadi's annotations, labels and event_owner_selector (issue 14)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0008_subscription_authorization"),
    ]

    operations = [
        migrations.AddField(
            model_name="eventtype",
            name="annotations",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="eventtype",
            name="labels",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="eventtype",
            name="event_owner_selector",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
