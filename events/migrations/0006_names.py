"""One name per thing (issue 11): EventType.stream_id becomes store_id, and the Cursor
row becomes CommittedCursor. Neither changes what the database holds: the column keeps
its name, and the table and content type are renamed with the model, along with the
permission codenames that Django derives from it (it does not rename those itself).
"""

from django.db import migrations, models

import events.models

ACTIONS = ("add", "change", "delete", "view")


def rename_codenames(apps, schema_editor, old="cursor", new="committedcursor"):
    Permission = apps.get_model("auth", "Permission")
    for action in ACTIONS:
        Permission.objects.filter(
            content_type__app_label="events", codename=f"{action}_{old}"
        ).update(codename=f"{action}_{new}")


def restore_codenames(apps, schema_editor):
    rename_codenames(apps, schema_editor, old="committedcursor", new="cursor")


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("events", "0005_recovery"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RenameField("eventtype", "stream_id", "store_id"),
                migrations.AlterField(
                    model_name="eventtype",
                    name="store_id",
                    field=models.CharField(
                        db_column="stream_id",
                        default=events.models.new_store_id,
                        editable=False,
                        max_length=32,
                        unique=True,
                    ),
                ),
            ],
        ),
        migrations.RenameModel("Cursor", "CommittedCursor"),
        migrations.AlterModelOptions(
            name="committedcursor",
            options={"ordering": ["event_type", "partition"], "verbose_name": "cursor"},
        ),
        migrations.RunPython(rename_codenames, restore_codenames),
    ]
