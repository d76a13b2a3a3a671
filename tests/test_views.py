"""The runs list, the run page and its endpoints (stop, logs, polling, results, model download)."""

import hashlib
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from experiments.models import Experiment
from runs import events
from runs.control import launch_run
from runs.models import FoldMetric, LogEntry, Run, RunStep

pytestmark = pytest.mark.django_db


def emit_log(run, message, level="info", **context):
    """What the engine's reporter does for a log line: the event and its LogEntry share one seq."""
    data = {"level": level, "message": message, "step": "", "fold": None, "branch": "", "variant": None, **context}
    event = events.append(run, events.JOB_LOG, data)
    LogEntry.objects.create(run=run, seq=event.seq, level=level, message=message,
                            **{k: v for k, v in context.items() if v is not None})
    return event


def emit_fold(run, fold, value, variant=1):
    for metric, v in (("accuracy", value), ("f1_macro", value - 0.01), ("roc_auc", value + 0.01)):
        FoldMetric.objects.create(run=run, variant=variant, variant_description="LogisticRegression(C=1.0)",
                                  fold=fold, metric=metric, value=v, fit_time=0.05)
    return events.append(run, events.JOB_METRICS, {"fold": fold, "variant": variant, "primary": value,
                                                    "metrics": {"accuracy": value}, "primary_metric": "accuracy"})


@pytest.fixture
def run(owner, experiment):
    return launch_run(owner, experiment=experiment)


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def test_it_requires_login(client, run):
    response = client.get(reverse("runs:detail", args=[run.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_shows_the_run_to_its_owner(owner_client, run):
    response = owner_client.get(reverse("runs:detail", args=[run.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Iris baseline" in html
    assert 'aria-label="Run status: Queued"' in html
    assert 'role="progressbar"' in html and 'aria-valuenow="0' in html
    run.refresh_from_db()
    assert run.last_seq == 1  # the JOB_STATUS queued event
    assert f'ws-connect="/ws/runs/{run.pk}/fragments/?after=1"' in html
    assert 'id="stop-form"' in html
    assert "Load data" in html  # the steps
    assert "← All runs" in html


def test_it_hides_the_run_from_an_outsider(client, outsider, run):
    client.force_login(outsider)
    assert client.get(reverse("runs:detail", args=[run.pk])).status_code == 404
    assert client.get(reverse("runs:live", args=[run.pk])).status_code == 404
    assert client.get(reverse("runs:logs", args=[run.pk])).status_code == 404
    assert client.post(reverse("runs:cancel", args=[run.pk])).status_code == 404
    run.refresh_from_db()
    assert run.status == Run.Status.QUEUED


def test_it_shows_any_run_to_staff(client, staff, run):
    client.force_login(staff)
    assert client.get(reverse("runs:detail", args=[run.pk])).status_code == 200


def test_it_renders_only_the_latest_log_lines(owner_client, run):
    run.mark_running("w1")
    LogEntry.objects.bulk_create(LogEntry(run=run, seq=1000 + i, message=f"line {i}") for i in range(5000))
    html = owner_client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert html.count('class="log-line level-') == 200
    assert "line 4999" in html and "line 4799" not in html
    assert re.search(r'class="load-older"(?! hidden)', html)


def test_it_loads_older_log_lines(owner_client, run):
    LogEntry.objects.bulk_create(LogEntry(run=run, seq=10 + i, message=f"line {i}") for i in range(300))
    response = owner_client.get(reverse("runs:logs", args=[run.pk]), {"before": 110}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.count('class="log-line level-') == 100
    assert 'hx-swap-oob="afterbegin"' in html
    assert "line 99<" in html and "line 100<" not in html
    plain = owner_client.get(reverse("runs:logs", args=[run.pk]), {"before": 110})
    assert "Older log lines" in plain.content.decode()


def test_it_shows_steps_fold_scores_and_chart(owner_client, run):
    run.mark_running("w1")
    RunStep.objects.filter(run=run, name="load_data").update(status="completed", started_at=timezone.now())
    emit_fold(run, 1, 0.9)
    emit_fold(run, 2, 0.95)
    html = owner_client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert "step-completed" in html
    assert html.count('class="fold-row"') == 2
    assert "Accuracy" in html and "F1 (macro)" in html and "ROC AUC" in html
    assert "0.9250" in html  # the running average
    assert "<svg class=\"chart\"" in html


def test_it_shows_the_completed_summary(owner_client, run, tmp_path):
    bundle = tmp_path / "model.joblib"
    bundle.write_bytes(b"model bytes")
    run.mark_running("w1")
    Run.objects.filter(pk=run.pk).update(model_file=str(bundle), model_sha256=hashlib.sha256(b"model bytes").hexdigest())
    run.mark_completed({"best_score": 0.9612, "models_trained": 6, "duration_seconds": 12.0, "metric": "accuracy"})
    html = owner_client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert 'aria-label="Run status: Completed"' in html
    assert "0.9612" in html and "View results" in html and "Export best model" in html
    assert 'id="stop-form"' not in html and "ws-connect" not in html


def test_it_downloads_the_model_with_its_checksum(owner_client, client, outsider, run, tmp_path):
    bundle = tmp_path / "model.joblib"
    bundle.write_bytes(b"model bytes")
    digest = hashlib.sha256(b"model bytes").hexdigest()
    Run.objects.filter(pk=run.pk).update(model_file=str(bundle), model_sha256=digest)
    response = owner_client.get(reverse("runs:model", args=[run.pk]))
    assert response.status_code == 200
    assert response["X-Model-SHA256"] == digest
    assert b"".join(response.streaming_content) == b"model bytes"
    client.force_login(outsider)
    assert client.get(reverse("runs:model", args=[run.pk])).status_code == 404


def test_it_has_no_model_to_download_before_completion(owner_client, run):
    assert owner_client.get(reverse("runs:model", args=[run.pk])).status_code == 404


def test_it_shows_the_failure_and_traceback(owner_client, run):
    run.mark_running("w1")
    run.mark_failed("ValueError: bad input", "Traceback (most recent call last):\n  File x\nValueError: bad input")
    html = owner_client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert 'aria-label="Run status: Failed"' in html
    assert "Traceback (most recent call last)" in html


def test_it_shows_a_stopped_run_with_partial_results(owner_client, run):
    run.mark_running("w1")
    emit_fold(run, 1, 0.9)
    run.mark_stopped()
    html = owner_client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert 'aria-label="Run status: Stopped"' in html
    assert "partial results" in html.lower()
    assert html.count('class="fold-row"') == 1


def test_it_warns_about_a_silent_worker(owner_client, run, settings):
    run.mark_running("w1")
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timezone.timedelta(seconds=25))
    html = owner_client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert re.search(r'No word from the worker for <span class="js-stale">2[5-9]</span> s', html)


def test_it_stops_a_queued_run(owner_client, run):
    response = owner_client.post(reverse("runs:cancel", args=[run.pk]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == Run.Status.STOPPED


def test_it_answers_htmx_stop_with_the_header(owner_client, run):
    run.mark_running("w1")
    response = owner_client.post(reverse("runs:cancel", args=[run.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'aria-label="Run status: Cancelling"' in response.content.decode()
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLING


def test_it_refuses_to_stop_a_finished_run(owner_client, run):
    run.mark_running("w1")
    run.mark_completed({})
    response = owner_client.post(reverse("runs:cancel", args=[run.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 409
    assert "already completed" in response.content.decode()
    plain = owner_client.post(reverse("runs:cancel", args=[run.pk]))
    assert plain.status_code == 409 and "already completed" in plain.content.decode()


def test_it_rejects_get_on_cancel(owner_client, run):
    assert owner_client.get(reverse("runs:cancel", args=[run.pk])).status_code == 405


def test_it_polls_fragments_after_a_seq(owner_client, run):
    run.mark_running("w1")
    after = Run.objects.get(pk=run.pk).last_seq
    emit_log(run, "hello from fold 1", fold=1)
    events.append(run, events.JOB_PROGRESS, {"progress": 0.5, "message": "Fitting fold 1/3 - LogisticRegression",
                                             "elapsed_seconds": 3, "eta_seconds": 3})
    response = owner_client.get(reverse("runs:live", args=[run.pk]), {"after": after}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert "hello from fold 1" in html and 'hx-swap-oob="beforeend"' in html
    assert 'aria-valuenow="50.0"' in html and "Fitting fold 1/3" in html
    assert f'data-last="{after + 2}"' in html


def test_it_tells_the_poller_to_stop_at_the_end(owner_client, run):
    run.mark_running("w1")
    run.mark_completed({"best_score": 0.9})
    response = owner_client.get(reverse("runs:live", args=[run.pk]), {"after": 0})
    assert response.status_code == 286
    assert 'data-terminal="1"' in response.content.decode()


def test_it_lists_only_the_users_runs(owner_client, outsider, run, iris_spec):
    other = Experiment.objects.create(owner=outsider, name="Mallory's secret", spec=iris_spec)
    launch_run(outsider, experiment=other)
    html = owner_client.get(reverse("runs:list")).content.decode()
    assert "Iris baseline" in html and "Mallory" not in html
    assert reverse("runs:detail", args=[run.pk]) in html
    assert 'hx-trigger="every 3s"' in html  # a queued run keeps the table fresh


def test_it_paginates_the_list(owner_client, owner, experiment):
    for _ in range(30):
        Run.objects.create(owner=owner, experiment=experiment, name="Bulk", spec=experiment.spec, status="completed")
    html = owner_client.get(reverse("runs:list")).content.decode()
    assert html.count("badge-completed") == 25 and "Page 1 of 2" in html
    assert owner_client.get(reverse("runs:list"), {"page": 2}).content.decode().count("badge-completed") == 5


def test_it_launches_a_run_from_the_list(owner_client, experiment):
    response = owner_client.post(reverse("runs:launch"), {"experiment": experiment.pk})
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()


def test_it_shows_spec_errors_when_launching(owner_client, owner):
    broken = Experiment.objects.create(owner=owner, name="Broken", spec={"dataset": {"kind": "builtin", "name": "nope"}})
    response = owner_client.post(reverse("runs:launch"), {"experiment": broken.pk}, follow=True)
    assert "cannot run" in response.content.decode()
    assert not Run.objects.exists()


def test_it_will_not_launch_someone_elses_experiment(client, outsider, experiment):
    client.force_login(outsider)
    client.post(reverse("runs:launch"), {"experiment": experiment.pk})
    assert not Run.objects.exists()


def test_it_shows_results(owner_client, run):
    run.mark_running("w1")
    emit_fold(run, 1, 0.9)
    html = owner_client.get(reverse("runs:results", args=[run.pk])).content.decode()
    assert "Variants by mean Accuracy" in html and "0.9000" in html
