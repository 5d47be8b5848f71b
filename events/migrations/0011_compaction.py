"""Event types may be compacted: cleanup_policy takes compact and compact_and_delete
(18 characters) as well as delete (issue 14)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0010_subscription_annotations"),
    ]

    operations = [
        migrations.AlterField(
            model_name="eventtype",
            name="cleanup_policy",
            field=models.CharField(
                choices=[
                    ("delete", "Delete"),
                    ("compact", "Compact"),
                    ("compact_and_delete", "Compact And Delete"),
                ],
                default="delete",
                help_text="compact: keep the latest event of each partition_compaction_key; compact_and_delete: that, within the retention time.",
                max_length=18,
            ),
        ),
    ]
