"""A subscription keeps Nakadi's authorization section, as clin reads it back (issue 14)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0007_client_user"),
    ]

    operations = [
        migrations.AddField(
            model_name="subscription",
            name="authorization",
            field=models.JSONField(
                blank=True, help_text="Nakadi's {admins, readers} section, kept as sent.", null=True
            ),
        ),
    ]
