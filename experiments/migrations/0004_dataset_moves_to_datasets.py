"""Dataset leaves experiments' state for the datasets app (datasets' 0001, which this follows); its table,
experiments_dataset, stays as it is, rows and all."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("experiments", "0003_spec_help_text"),
        ("datasets", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Dataset")],
            database_operations=[],
        ),
    ]
