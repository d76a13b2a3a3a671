"""The admin: every page renders for staff, runs are listed usefully, the actions cancel and re-run for real
(against the real Redis queue), specs are validated field by field, and a huge log does not slow a run's page."""

import hashlib
import json
import re
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.contrib.messages import ERROR, INFO, SUCCESS, WARNING, get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from rq.job import Job, JobStatus

from datasets.models import Dataset
from experiments.models import Experiment, RegisteredModel
from runs import events
from runs.control import launch_run
from runs.worker.scheduling import get_queue
from runs.models import FoldMetric, LogEntry, Run, RunEvent, RunStep, events_after

pytestmark = pytest.mark.django_db

RUN_LIST = reverse("admin:runs_run_changelist")


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def launch(django_capture_on_commit_callbacks):
    """launch_run with its on-commit enqueue executed, so the RQ job really is in Redis."""

    def go(owner, experiment, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return launch_run(owner, experiment=experiment, **kwargs)

    return go


def queued_job_ids():
    return get_queue().get_job_ids()


def sent_messages(response):
    return [(m.level, m.message) for m in get_messages(response.wsgi_request)]


def run_action(client, action, runs, capture):
    with capture(execute=True):
        return client.post(RUN_LIST, {"action": action, "_selected_action": [r.pk for r in runs]})


# --- Every page renders ------------------------------------------------------------------------------


def test_it_registers_every_model():
    for model in (Experiment, Dataset, RegisteredModel, Run, RunStep, FoldMetric, LogEntry, RunEvent):
        assert admin.site.is_registered(model), model


def test_it_renders_every_changelist_and_change_form_for_staff(staff_client, owner, experiment, launch):
    run = launch(owner, experiment)
    run.mark_running()
    FoldMetric.objects.create(run=run, variant=1, fold=1, metric="accuracy", value=0.93, fit_time=0.1)
    LogEntry.objects.create(run=run, seq=run.last_seq, level="info", message="Fitting fold 1/3")
    dataset = Dataset.objects.create(owner=owner, name="iris.csv", kind=Dataset.Kind.CSV,
                                     columns=[{"name": "a", "dtype": "float64"}])
    promoted = RegisteredModel.objects.create(owner=owner, name="best-iris", run=run, file="models/x.joblib",
                                              sha256="0" * 64)
    objects = [experiment, dataset, promoted, run, run.steps.first(), run.fold_metrics.first(), run.logs.first(),
               run.events.first()]

    for obj in objects:
        opts = obj._meta
        changelist = staff_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        assert changelist.status_code == 200, opts.model_name
        change = staff_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
        assert change.status_code == 200, opts.model_name
    for name in ("experiments_experiment", "datasets_dataset", "experiments_registeredmodel"):
        assert staff_client.get(reverse(f"admin:{name}_add")).status_code == 200


def test_it_keeps_the_admin_from_non_staff(client, owner, outsider, experiment, launch):
    run = launch(owner, experiment)
    client.force_login(outsider)

    for url in (reverse("admin:index"), RUN_LIST, reverse("admin:runs_run_change", args=[run.pk]),
                reverse("django_rq:home")):
        response = client.get(url)
        assert response.status_code == 302, url
        assert "login" in response["Location"]


def test_it_shows_runs_read_only_with_their_spec_as_pretty_json(staff_client, owner, experiment, launch):
    run = launch(owner, experiment)
    url = reverse("admin:runs_run_change", args=[run.pk])

    html = staff_client.get(url).content.decode()

    assert "&quot;dataset&quot;: {\n    &quot;kind&quot;: &quot;builtin&quot;" in html
    assert 'name="_save"' not in html
    assert f'href="{reverse("django_rq:job_detail", args=[0, run.rq_job_id])}"' in html
    assert staff_client.post(url, {"name": "renamed"}).status_code == 403
    assert staff_client.get(reverse("admin:runs_run_add")).status_code == 403


# --- The run list ------------------------------------------------------------------------------------


def test_it_lists_runs_with_status_progress_duration_owner_and_experiment(staff_client, owner, experiment, launch):
    run = launch(owner, experiment)
    run.mark_running()
    Run.objects.filter(pk=run.pk).update(finished_fits=17, total_fits=40, started_at=timezone.now() - timedelta(seconds=75))
    launch(owner, experiment, name="Second try")

    html = staff_client.get(RUN_LIST).content.decode()

    # The pages' badge, coloured by the pages' tokens (no inline colours of its own).
    badge = render_to_string("includes/status_badge.html", {"run": Run.objects.get(pk=run.pk)})
    assert badge.strip() in html and 'data-status="running"' in badge
    assert 'class="badge badge-queued" data-status="queued"' in html
    assert "style=" not in badge
    assert "css/status.css" in html
    assert "42.5%" in html  # Run.percent: 17 of 40 fits
    assert re.search(r">1 min [1-5]\d s<", html)  # the running run's duration so far, as the pages write it
    assert ">alice<" in html and ">Iris baseline<" in html


def test_it_lists_runs_without_a_query_per_row(staff_client, owner, experiment, launch, django_assert_max_num_queries):
    for _ in range(10):
        launch(owner, experiment)

    with django_assert_max_num_queries(12):
        assert staff_client.get(RUN_LIST).status_code == 200


def test_it_filters_runs_by_status_and_owner(staff_client, owner, outsider, experiment, launch):
    mine = launch(owner, experiment, name="Mine running")
    mine.mark_running()
    theirs = Experiment.objects.create(owner=outsider, name="Theirs", spec=experiment.spec)
    launch(outsider, theirs, name="Theirs queued")

    running = staff_client.get(RUN_LIST, {"status__exact": "running"})
    by_outsider = staff_client.get(RUN_LIST, {"owner__id__exact": outsider.pk})

    assert [r.name for r in running.context["cl"].result_list] == ["Mine running"]
    assert [r.name for r in by_outsider.context["cl"].result_list] == ["Theirs queued"]
    assert "By owner" in running.content.decode() and "By status" in running.content.decode()


def test_it_searches_runs_by_name_and_experiment_name(staff_client, owner, experiment, launch):
    launch(owner, experiment, name="Tuned forest")
    launch(owner, experiment, name="Baseline")
    other = Experiment.objects.create(owner=owner, name="Wine study", spec=experiment.spec)
    launch(owner, other, name="Unrelated name")

    assert [r.name for r in staff_client.get(RUN_LIST, {"q": "forest"}).context["cl"].result_list] == ["Tuned forest"]
    assert [r.name for r in staff_client.get(RUN_LIST, {"q": "wine"}).context["cl"].result_list] == ["Unrelated name"]


# --- Actions -----------------------------------------------------------------------------------------


def test_it_offers_the_actions_only_to_staff_who_may_change_runs(client, owner, experiment, launch):
    viewer = User.objects.create_user("vera", password="vera-password-1", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_run"))
    run = launch(owner, experiment)
    client.force_login(viewer)

    response = client.get(RUN_LIST)
    refused = client.post(RUN_LIST, {"action": "cancel_selected", "_selected_action": [run.pk]})

    assert response.status_code == 200
    assert "cancel_selected" not in response.content.decode()
    assert refused.status_code == 200  # "No action selected", the run untouched
    run.refresh_from_db()
    assert run.status == Run.Status.QUEUED


def test_it_cancels_a_queued_run_and_removes_its_job_from_the_queue(
    staff_client, owner, experiment, launch, django_capture_on_commit_callbacks
):
    run = launch(owner, experiment)
    assert run.rq_job_id in queued_job_ids()

    response = run_action(staff_client, "cancel_selected", [run], django_capture_on_commit_callbacks)

    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == Run.Status.STOPPED
    assert run.rq_job_id not in queued_job_ids()
    assert Job.fetch(run.rq_job_id, connection=get_queue().connection).get_status() == JobStatus.CANCELED
    later = events_after(run.pk, after=1)
    assert [m["data"]["status"] for m in later if m["type"] == events.JOB_STATUS] == ["stopped"]
    assert later[0]["data"]["message"].startswith("Stop requested by sam at ")  # the stop is logged first
    assert sent_messages(response) == [(SUCCESS, "Stopped 1 queued run; they will not start.")]


def test_it_asks_a_running_run_to_stop(staff_client, owner, experiment, launch, django_capture_on_commit_callbacks):
    run = launch(owner, experiment)
    run.mark_running(worker_name="w1")

    response = run_action(staff_client, "cancel_selected", [run], django_capture_on_commit_callbacks)

    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLING
    assert run.cancel_requested_at is not None
    assert sent_messages(response) == [(SUCCESS, "Asked 1 running run to stop after the current fit.")]


def test_it_refuses_to_cancel_finished_runs_and_says_so(staff_client, owner, experiment, launch,
                                                         django_capture_on_commit_callbacks):
    done = launch(owner, experiment, name="Done")
    done.mark_running()
    done.mark_completed({"best_score": 0.9})

    response = run_action(staff_client, "cancel_selected", [done], django_capture_on_commit_callbacks)

    done.refresh_from_db()
    assert done.status == Run.Status.COMPLETED
    assert sent_messages(response) == [
        (ERROR, f"Not cancelled: Done #{done.pk}: This run already completed; there is nothing to stop.")
    ]


def test_it_reports_each_outcome_of_a_mixed_selection(staff_client, owner, experiment, launch,
                                                      django_capture_on_commit_callbacks):
    queued = launch(owner, experiment, name="Queued")
    running = launch(owner, experiment, name="Running")
    running.mark_running()
    stopped = launch(owner, experiment, name="Stopped")
    stopped.mark_stopped()
    failed = launch(owner, experiment, name="Failed")
    failed.mark_failed("boom")

    response = run_action(staff_client, "cancel_selected", [queued, running, stopped, failed],
                          django_capture_on_commit_callbacks)

    assert sent_messages(response) == [
        (SUCCESS, "Stopped 1 queued run; they will not start."),
        (SUCCESS, "Asked 1 running run to stop after the current fit."),
        (INFO, f"Already stopping or stopped, nothing to do: Stopped #{stopped.pk}."),
        (WARNING, f"Not cancelled: Failed #{failed.pk}: This run already failed; there is nothing to stop."),
    ]
    assert {r.name: r.status for r in Run.objects.all()} == {
        "Queued": "stopped", "Running": "cancelling", "Stopped": "stopped", "Failed": "failed",
    }


def test_it_reruns_through_control_rerun(staff_client, owner, experiment, launch, django_capture_on_commit_callbacks):
    original = launch(owner, experiment, name="Original")
    original.mark_running()
    original.mark_completed({})

    response = run_action(staff_client, "rerun_selected", [original], django_capture_on_commit_callbacks)

    new = Run.objects.get(rerun_of=original)
    assert (new.status, new.owner, new.experiment, new.name, new.spec) == (
        Run.Status.QUEUED, owner, experiment, "Original", original.spec
    )
    assert list(new.steps.values_list("name", flat=True))[0] == "load_data"
    assert new.rq_job_id in queued_job_ids()
    assert sent_messages(response) == [(SUCCESS, f"Launched 1 new run: Original #{new.pk}.")]


def test_it_reports_a_rerun_whose_spec_is_no_longer_valid(staff_client, owner, launch,
                                                          django_capture_on_commit_callbacks):
    dataset = Dataset.objects.create(owner=owner, name="gone.csv", kind=Dataset.Kind.CSV, sha256="a" * 64)
    spec = {"dataset": {"kind": "csv", "id": dataset.pk}, "task": "regression", "models": ["Ridge"]}
    run = launch(owner, None, spec=spec, name="From CSV")
    dataset_id = dataset.pk
    dataset.delete()

    response = run_action(staff_client, "rerun_selected", [run], django_capture_on_commit_callbacks)

    assert Run.objects.count() == 1
    [(level, message)] = sent_messages(response)
    assert level == ERROR
    assert message == f"Could not re-run: From CSV #{run.pk}: dataset.id: No CSV dataset {dataset_id} that you can use."


def test_it_protects_active_runs_from_deletion(staff_client, owner, experiment, launch):
    active = launch(owner, experiment)
    done = launch(owner, experiment)
    done.mark_stopped()
    LogEntry.objects.create(run=done, seq=1, message="hello")

    blocked = staff_client.post(reverse("admin:runs_run_delete", args=[active.pk]), {"post": "yes"})
    confirm = staff_client.get(reverse("admin:runs_run_delete", args=[done.pk]))
    deleted = staff_client.post(reverse("admin:runs_run_delete", args=[done.pk]), {"post": "yes"})

    assert "cancel it first" in blocked.content.decode()
    assert Run.objects.filter(pk=active.pk).exists()
    assert "Log entries: 1" in confirm.content.decode()
    assert deleted.status_code == 302
    assert not Run.objects.filter(pk=done.pk).exists()


# --- Experiments -------------------------------------------------------------------------------------


def test_it_shows_field_level_spec_errors(staff_client, owner, iris_spec):
    iris_spec["models"] = [{"estimator": "LogisticRegression", "params": {"C": [-1]}}, {"estimator": "Nope"}]
    iris_spec["cv"]["folds"] = 1
    data = {"owner": owner.pk, "name": "Broken", "description": "", "spec": json.dumps(iris_spec)}

    response = staff_client.post(reverse("admin:experiments_experiment_add"), data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["spec"]
    assert any(e.startswith("models.0.params.C: The 'C' parameter of LogisticRegression") for e in errors)
    assert "models.1.estimator: Unknown estimator." in errors
    assert "cv.folds: Must be between 2 and 50." in errors
    assert not Experiment.objects.exists()


def test_it_checks_the_spec_against_the_chosen_owner(staff_client, owner, outsider):
    dataset = Dataset.objects.create(owner=outsider, name="theirs.csv", kind=Dataset.Kind.CSV, sha256="a" * 64)
    spec = {"dataset": {"kind": "csv", "id": dataset.pk}, "task": "regression", "models": ["Ridge"]}
    data = {"owner": owner.pk, "name": "Borrowed", "description": "", "spec": json.dumps(spec)}

    response = staff_client.post(reverse("admin:experiments_experiment_add"), data)

    errors = response.context["adminform"].form.errors["spec"]
    assert errors == [f"dataset.id: No CSV dataset {dataset.pk} that you can use."]
    data["owner"] = outsider.pk
    assert staff_client.post(reverse("admin:experiments_experiment_add"), data).status_code == 302


def test_it_saves_a_valid_spec_normalised_and_shows_it_pretty(staff_client, owner):
    data = {"owner": owner.pk, "name": "Minimal", "description": "",
            "spec": '{"dataset": {"kind": "builtin", "name": "wine"}, "models": ["RandomForestClassifier"]}'}

    response = staff_client.post(reverse("admin:experiments_experiment_add"), data)

    assert response.status_code == 302
    experiment = Experiment.objects.get(name="Minimal")
    assert experiment.spec["cv"] == {"kind": "stratified_kfold", "folds": 5, "shuffle": True, "seed": 42}
    html = staff_client.get(reverse("admin:experiments_experiment_change", args=[experiment.pk])).content.decode()
    assert "&quot;cv&quot;: {\n    &quot;kind&quot;: &quot;stratified_kfold&quot;" in html


def test_it_launches_runs_of_selected_experiments(staff_client, experiment, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(reverse("admin:experiments_experiment_changelist"),
                                     {"action": "launch_selected", "_selected_action": [experiment.pk]})

    run = Run.objects.get(experiment=experiment)
    assert run.rq_job_id in queued_job_ids()
    assert sent_messages(response) == [(SUCCESS, "Launched 1 run.")]


def test_it_describes_an_uploaded_csv_dataset(staff_client, owner, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    content = b"rooms,area,price\n3,70.5,200\n4,90.0,260\n2,55.0,150\n5,120.5,340\n"
    data = {"owner": owner.pk, "name": "Houses", "kind": "csv", "params": "{}",
            "file": SimpleUploadedFile("houses.csv", content, "text/csv")}

    response = staff_client.post(reverse("admin:datasets_dataset_add"), data)

    assert response.status_code == 302
    dataset = Dataset.objects.get(name="Houses")
    assert (dataset.n_rows, dataset.n_columns, dataset.size_bytes) == (4, 3, len(content))
    assert dataset.columns[1]["name"] == "area" and dataset.columns[1]["kind"] == "numeric"
    assert dataset.file.read() == content
    assert dataset.sha256 == hashlib.sha256(content).hexdigest()


def test_it_refuses_an_unreadable_csv(staff_client, owner, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    data = {"owner": owner.pk, "name": "Empty", "kind": "csv", "params": "{}",
            "file": SimpleUploadedFile("empty.csv", b"", "text/csv")}

    response = staff_client.post(reverse("admin:datasets_dataset_add"), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["file"]
    assert not Dataset.objects.exists()


# --- A run with a huge log ---------------------------------------------------------------------------


def test_it_opens_a_run_with_100000_log_lines_fast(staff_client, owner, experiment, launch,
                                                   django_assert_max_num_queries):
    run = launch(owner, experiment)
    LogEntry.objects.bulk_create(
        (LogEntry(run=run, seq=i, level="info", message=f"Line {i}") for i in range(1, 100_001)), batch_size=5000
    )
    url = reverse("admin:runs_run_change", args=[run.pk])

    # The query bound is the guard against loading every line: a wall-clock bound would only flake on a busy machine.
    with django_assert_max_num_queries(30):
        response = staff_client.get(url)

    html = response.content.decode()
    log_rows = re.findall(r'<tr class="form-row[^"]*"\s+id="logs-\d+">', html)
    assert len(log_rows) == 10
    assert "Line 100000" in html and "Line 99991" in html and "Line 99990<" not in html
    assert "Newest 10 of 100,000 shown" in html
    assert "All 100,000 log lines" in html
    assert f'href="{reverse("admin:runs_logentry_changelist")}?run__id__exact={run.pk}"' in html

    page = staff_client.get(reverse("admin:runs_logentry_changelist"), {"run__id__exact": run.pk, "p": 3})
    assert page.status_code == 200
    assert len(page.context["cl"].result_list) == 100
    assert page.context["cl"].result_count == 100_000


# --- The RQ dashboard --------------------------------------------------------------------------------


def test_it_links_the_rq_dashboard_from_the_admin_index(staff_client, owner, experiment, launch):
    launch(owner, experiment)

    index = staff_client.get(reverse("admin:index")).content.decode()
    dashboard = staff_client.get(reverse("django_rq:home"))

    assert f'<a href="{reverse("django_rq:home")}">RQ queues and workers</a>' in index
    assert reverse("django_rq:home") == "/admin/rq/"
    assert dashboard.status_code == 200
    assert "default" in dashboard.content.decode()
    [job_id] = queued_job_ids()
    assert staff_client.get(reverse("django_rq:job_detail", args=[0, job_id])).status_code == 200
