"""Dataset moves here from experiments, with its data where it was: Django's state gains the model, the
database is left alone (the table keeps its name, experiments_dataset: Meta.db_table). experiments' 0004 then
removes it from experiments' state, again without touching the table. On a database that already had it, the
content type is relabelled too, so the permissions on datasets and the admin's history of them follow."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def relabel_content_type(apps, schema_editor, old="experiments", new="datasets"):
    content_type = apps.get_model("contenttypes", "ContentType")
    if not content_type.objects.filter(app_label=new, model="dataset").exists():
        content_type.objects.filter(app_label=old, model="dataset").update(app_label=new)


def restore_content_type(apps, schema_editor):
    relabel_content_type(apps, schema_editor, old="datasets", new="experiments")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("contenttypes", "0002_remove_content_type_name"),
        ("experiments", "0003_spec_help_text"),  # the table exists by then (experiments' 0001 made it)
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Dataset",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("name", models.CharField(max_length=200)),
                        ("kind", models.CharField(choices=[("csv", "Uploaded CSV"),
                                                           ("builtin", "Built-in (scikit-learn)"),
                                                           ("synthetic", "Synthetic generator")],
                                                  default="csv", max_length=16)),
                        ("file", models.FileField(blank=True, upload_to="datasets/%Y/%m/")),
                        ("params", models.JSONField(blank=True, default=dict)),
                        ("size_bytes", models.BigIntegerField(default=0)),
                        ("n_rows", models.PositiveIntegerField(default=0)),
                        ("n_columns", models.PositiveIntegerField(default=0)),
                        ("columns", models.JSONField(blank=True, default=list,
                                                     help_text='[{"name": ..., "dtype": ...}]')),
                        ("sha256", models.CharField(blank=True, max_length=64)),
                        ("created", models.DateTimeField(auto_now_add=True)),
                        ("owner", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                                    related_name="datasets", to=settings.AUTH_USER_MODEL)),
                    ],
                    options={"db_table": "experiments_dataset", "ordering": ["-created"]},
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(relabel_content_type, restore_content_type),
    ]
