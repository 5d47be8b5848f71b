"""A subscription keeps Nakadi's annotations, and what becomes of an event delivered
max_deliveries times: a dead letter, or skipped (issue 14).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0009_event_type_annotations"),
    ]

    operations = [
        migrations.AlterField(
            model_name="subscription",
            name="max_deliveries",
            field=models.PositiveIntegerField(
                default=10,
                help_text="Deliveries of one event before it is a dead letter or skipped.",
            ),
        ),
        migrations.AddField(
            model_name="subscription",
            name="annotations",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="subscription",
            name="unprocessable_event_policy",
            field=models.CharField(
                choices=[
                    ("dead_letter", "dead letter: set it aside, to replay or discard"),
                    ("skip", "skip: acknowledge it and count it, store nothing"),
                ],
                default="dead_letter",
                help_text="What becomes of an event delivered max_deliveries times without "
                "success.",
                max_length=16,
            ),
        ),
    ]
