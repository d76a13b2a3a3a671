"""Dataset moved from experiments to datasets without touching its table: a database migrated before the move
keeps its datasets, readable through the new model, and the permissions on them (datasets' 0001, experiments'
0004)."""

from django.contrib.auth.models import User
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from datasets.models import Dataset

BEFORE = [("experiments", "0003_spec_help_text"), ("datasets", None)]
# The latest of the apps the test writes to besides, for the state it writes through.
AROUND = [("contenttypes", "0002_remove_content_type_name"), ("auth", "0012_alter_user_first_name_max_length")]
AFTER = [("experiments", "0004_dataset_moves_to_datasets"), ("datasets", "0001_initial")]


def migrate(targets):
    """Migrate to `targets`; the state of the models there, with auth's and contenttypes' latest."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state([t for t in targets if t[1] is not None] + AROUND)


def test_it_keeps_the_rows_of_a_database_migrated_before_the_move(transactional_db):
    state = migrate(BEFORE)
    assert ("experiments", "dataset") in state.models and ("datasets", "dataset") not in state.models
    old = state.apps
    owner = old.get_model("auth", "User").objects.create(username="owner")
    old_dataset = old.get_model("experiments", "Dataset")
    row = old_dataset.objects.create(owner_id=owner.pk, name="iris.csv", n_rows=150, n_columns=5,
                                     columns=[{"name": "sepal"}], sha256="ab" * 32)
    content_type = old.get_model("contenttypes", "ContentType").objects.get_or_create(
        app_label="experiments", model="dataset")[0]
    permission = old.get_model("auth", "Permission").objects.get_or_create(
        content_type=content_type, codename="change_dataset", defaults={"name": "Can change dataset"})[0]
    old.get_model("auth", "User").user_permissions.through.objects.create(user_id=owner.pk,
                                                                         permission_id=permission.pk)

    state = migrate(AFTER)
    assert ("datasets", "dataset") in state.models and ("experiments", "dataset") not in state.models

    dataset = Dataset.objects.get(pk=row.pk)
    assert (dataset.owner.username, dataset.name, dataset.n_rows, dataset.columns, dataset.sha256) == (
        "owner", "iris.csv", 150, [{"name": "sepal"}], "ab" * 32)
    assert User.objects.get(pk=owner.pk).has_perm("datasets.change_dataset")
    assert Dataset.objects.create(owner=dataset.owner, name="next.csv").pk > row.pk  # the id sequence goes on
