"""Issue 14, finding 5: a failed run tells its owner what failed, where, and what to do, and shows nobody but
staff the traceback or the server's paths."""

from html import unescape

from django.core.files.base import ContentFile
from django.urls import reverse

from datasets.models import Dataset
from runs import events
from runs.control import launch_run
from runs.worker.failures import public_text, readable
from runs.models import Run, RunEvent
from tests.runwork import wait_for_status


def test_it_cuts_server_paths_down_to_file_names():
    text = "No such file: '/work/app/.runwatch/media/datasets/sales.csv' (C:\\app\\media\\x.csv)"
    assert public_text(text) == "No such file: 'sales.csv' (x.csv)"


def test_it_says_where_a_fit_failed_and_what_to_do():
    run = Run(runner="cv", current_step="cross_validate", current_fold=2, current_variant=3,
              variant_description="Ridge alpha=1", current_branch="scaled")
    assert readable(run, "ValueError: Input contains NaN") == (
        "Cross-validate (variant 3: Ridge alpha=1, branch scaled, fold 2) failed: ValueError: Input contains NaN. "
        "Try other parameter values or another estimator for this variant, then re-run."
    )


def test_it_explains_a_missing_target_column_and_keeps_the_traceback_for_staff(worker, client, owner, staff):
    dataset = Dataset(owner=owner, name="sales")
    content = ContentFile(b"a,b,y\n" + b"".join(f"{i},{i % 3},{i % 2}\n".encode() for i in range(30)), name="s.csv")
    dataset.describe_csv(content)
    dataset.file.save("sales.csv", content, save=True)
    spec = {"dataset": {"kind": "csv", "id": dataset.pk}, "task": "classification", "target": "price",
            "models": ["LogisticRegression"], "cv": {"kind": "kfold", "folds": 3}, "metric": "accuracy"}
    run = launch_run(owner, spec=spec, name="No target")

    wait_for_status(run, Run.Status.FAILED, timeout=60)

    reason = "The target column 'price' is not in the file. Its columns are: 'a', 'b', 'y'"
    assert run.message == reason + "."
    assert run.error_message == (
        f"Validate data failed: {reason}. Clone and edit: the Preprocessing step fills missing values, encodes "
        "text and leaves columns out; or fix the data and upload it again."
    )
    assert "Traceback (most recent call last)" in run.traceback
    failed = RunEvent.objects.get(run=run, type=events.JOB_FAILED)
    # How far it got: no fit of the 3 it planned, after some time running.
    assert failed.data.pop("elapsed_seconds") >= 0
    assert failed.data == {"status": "failed", "previous": "running", "message": run.error_message, "partial": False,
                           "runner": "cv", "finished_fits": 0, "total_fits": run.total_fits}

    client.force_login(owner)
    html = unescape(client.get(reverse("live:detail", args=[run.pk])).content.decode())
    assert run.error_message in html
    assert "Traceback" not in html and "Technical details" not in html
    assert "/work/" not in html and ".py" not in html

    client.force_login(staff)
    html = client.get(reverse("live:detail", args=[run.pk])).content.decode()
    assert "Technical details (staff only)" in html and "Traceback (most recent call last)" in html
