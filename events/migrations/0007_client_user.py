"""A client may be linked to a Django user, who then acts as it in the browser (issue 12)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0006_names"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="client",
            name="user",
            field=models.OneToOneField(
                blank=True,
                help_text="A signed-in user who acts as this client in the browser (session auth).",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="api_client",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]
