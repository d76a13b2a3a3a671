"""The runs list, the run page and its endpoints (stop, logs, polling, results, model download)."""

import hashlib
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from experiments.models import Experiment
from runs import events
from runs.control import launch_run
from runs.models import FoldMetric, LogEntry, Run, RunStep, append_event
from tests.helpers import reporter_for

pytestmark = pytest.mark.django_db


def emit_log(run, message, level="info", **context):
    """A log line, written by the engine's reporter as a real run writes it."""
    reporter_for(run).log(level, message, **context)


def emit_fold(run, fold, value, variant=1):
    """A scored fold, written by the engine's reporter: its event, its metric rows and the run's counters."""
    done = FoldMetric.objects.filter(run=run, metric="accuracy").count() + 1
    total = Run.objects.get(pk=run.pk).total_fits or done
    reporter_for(run).fold_done(
        branch="default", variant=variant, description="LogisticRegression(C=1.0)", fold=fold,
        metrics={"accuracy": value, "f1_macro": value - 0.01, "roc_auc": value + 0.01}, fit_time=0.05,
        primary_metric="accuracy", primary=value, running_mean=value, finished=done, total=total, eta_seconds=None,
        best_score=value,
    )


@pytest.fixture
def run(owner, experiment):
    return launch_run(owner, experiment=experiment)


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def test_it_requires_login(client, run):
    response = client.get(reverse("live:detail", args=[run.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_shows_the_run_to_its_owner(owner_client, run):
    response = owner_client.get(reverse("live:detail", args=[run.pk]))
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
    assert client.get(reverse("live:detail", args=[run.pk])).status_code == 404
    assert client.get(reverse("live:live", args=[run.pk])).status_code == 404
    assert client.get(reverse("live:logs", args=[run.pk])).status_code == 404
    assert client.post(reverse("live:cancel", args=[run.pk])).status_code == 404
    run.refresh_from_db()
    assert run.status == Run.Status.QUEUED


def test_it_shows_any_run_to_staff(client, staff, run):
    client.force_login(staff)
    assert client.get(reverse("live:detail", args=[run.pk])).status_code == 200


def test_it_renders_only_the_latest_log_lines(owner_client, run):
    run.mark_running("w1")
    LogEntry.objects.bulk_create(LogEntry(run=run, seq=1000 + i, message=f"line {i}") for i in range(5000))
    html = owner_client.get(reverse("live:detail", args=[run.pk])).content.decode()
    assert html.count('class="log-line level-') == 200
    assert "line 4999" in html and "line 4799" not in html
    assert re.search(r'class="load-older"(?! hidden)', html)


def test_it_loads_older_log_lines(owner_client, run):
    LogEntry.objects.bulk_create(LogEntry(run=run, seq=10 + i, message=f"line {i}") for i in range(300))
    response = owner_client.get(reverse("live:logs", args=[run.pk]), {"before": 110}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.count('class="log-line level-') == 100
    assert 'hx-swap-oob="afterbegin"' in html
    assert "line 99<" in html and "line 100<" not in html
    plain = owner_client.get(reverse("live:logs", args=[run.pk]), {"before": 110})
    assert "Older log lines" in plain.content.decode()


def test_it_shows_steps_fold_scores_and_chart(owner_client, run):
    run.mark_running("w1")
    RunStep.objects.filter(run=run, name="load_data").update(status="completed", started_at=timezone.now())
    emit_fold(run, 1, 0.9)
    emit_fold(run, 2, 0.95)
    html = owner_client.get(reverse("live:detail", args=[run.pk])).content.decode()
    assert "step-completed" in html
    assert html.count('fold-row" role="row"') == 2
    assert "Accuracy" in html and "F1 (macro)" in html and "ROC AUC" in html
    assert "0.9250" in html  # the running average
    # The chart is drawn in the browser from these points, the same the stream appends to.
    assert 'id="metrics-chart"' in html
    assert re.findall(r'<i data-seq="\d+" data-k="default/1" data-y="([\d.]+)" data-m="([\d.]+)" data-n="\d+">', html) == [
        ("0.9", "0.9"), ("0.95", "0.925")]


def test_it_shows_the_completed_summary(owner_client, run, tmp_path):
    bundle = tmp_path / "model.joblib"
    bundle.write_bytes(b"model bytes")
    run.mark_running("w1")
    Run.objects.filter(pk=run.pk).update(model_file=str(bundle), model_sha256=hashlib.sha256(b"model bytes").hexdigest())
    run.mark_completed({"best_score": 0.9612, "models_trained": 6, "duration_seconds": 12.0, "metric": "accuracy"})
    html = owner_client.get(reverse("live:detail", args=[run.pk])).content.decode()
    assert 'aria-label="Run status: Completed"' in html
    assert "0.9612" in html and "View results" in html and "Export best model" in html
    assert 'id="stop-form"' not in html and "ws-connect" not in html


def test_it_downloads_the_model_with_its_checksum(owner_client, client, outsider, run, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path  # model_file is a storage name, relative to MEDIA_ROOT by default
    (tmp_path / "model.joblib").write_bytes(b"model bytes")
    digest = hashlib.sha256(b"model bytes").hexdigest()
    Run.objects.filter(pk=run.pk).update(model_file="model.joblib", model_sha256=digest)
    response = owner_client.get(reverse("results:model", args=[run.pk]))
    assert response.status_code == 200
    assert response["X-Model-SHA256"] == digest
    assert b"".join(response.streaming_content) == b"model bytes"
    client.force_login(outsider)
    assert client.get(reverse("results:model", args=[run.pk])).status_code == 404


def test_it_has_no_model_to_download_before_completion(owner_client, run):
    assert owner_client.get(reverse("results:model", args=[run.pk])).status_code == 404


def test_it_shows_the_failure_and_the_traceback_to_staff_only(owner_client, client, staff, run):
    run.mark_running("w1")
    run.mark_failed("ValueError: bad input", "Traceback (most recent call last):\n  File x\nValueError: bad input")
    html = owner_client.get(reverse("live:detail", args=[run.pk])).content.decode()
    assert 'aria-label="Run status: Failed"' in html and "ValueError: bad input" in html
    assert "Traceback (most recent call last)" not in html
    client.force_login(staff)
    html = client.get(reverse("live:detail", args=[run.pk])).content.decode()
    assert "Technical details" in html and "Traceback (most recent call last)" in html


def test_it_shows_a_stopped_run_with_partial_results(owner_client, run):
    run.mark_running("w1")
    emit_fold(run, 1, 0.9)
    run.mark_stopped()
    html = owner_client.get(reverse("live:detail", args=[run.pk])).content.decode()
    assert 'aria-label="Run status: Stopped"' in html
    assert "partial results" in html.lower()
    assert html.count('fold-row" role="row"') == 1


def test_it_warns_about_a_silent_worker(owner_client, run, settings):
    run.mark_running("w1")
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timezone.timedelta(seconds=25))
    html = owner_client.get(reverse("live:detail", args=[run.pk])).content.decode()
    assert re.search(r'No word from the worker for <span class="js-stale">2[5-9]</span> s', html)


def test_it_stops_a_queued_run(owner_client, run):
    response = owner_client.post(reverse("live:cancel", args=[run.pk]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == Run.Status.STOPPED


def test_it_answers_htmx_stop_with_nothing_to_swap(owner_client, run):
    # The stream brings the new status; fragments in the answer would find their targets gone.
    run.mark_running("w1")
    response = owner_client.post(reverse("live:cancel", args=[run.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert response.content == b""
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLING


def test_it_refuses_to_stop_a_finished_run(owner_client, run):
    run.mark_running("w1")
    run.mark_completed({})
    response = owner_client.post(reverse("live:cancel", args=[run.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 409
    assert "already completed" in response.content.decode()
    plain = owner_client.post(reverse("live:cancel", args=[run.pk]))
    assert plain.status_code == 409 and "already completed" in plain.content.decode()


def test_it_rejects_get_on_cancel(owner_client, run):
    assert owner_client.get(reverse("live:cancel", args=[run.pk])).status_code == 405


def test_it_polls_fragments_after_a_seq(owner_client, run):
    run.mark_running("w1")
    after = Run.objects.get(pk=run.pk).last_seq
    emit_log(run, "hello from fold 1", fold=1)
    append_event(run, events.JOB_PROGRESS, {"progress": 0.5, "message": "Fitting fold 1/3 - LogisticRegression",
                                             "elapsed_seconds": 3, "eta_seconds": 3})
    response = owner_client.get(reverse("live:live", args=[run.pk]), {"after": after}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert "hello from fold 1" in html and 'hx-swap-oob="beforeend"' in html
    assert 'aria-valuenow="50.0"' in html and "Fitting fold 1/3" in html
    assert f'data-last="{after + 2}"' in html


def test_it_tells_the_poller_to_stop_at_the_end(owner_client, run):
    run.mark_running("w1")
    run.mark_completed({"best_score": 0.9})
    response = owner_client.get(reverse("live:live", args=[run.pk]), {"after": 0})
    assert response.status_code == 286
    assert 'data-terminal="1"' in response.content.decode()


def test_it_lists_only_the_users_runs(owner_client, outsider, run, iris_spec):
    other = Experiment.objects.create(owner=outsider, name="Mallory's secret", spec=iris_spec)
    launch_run(outsider, experiment=other)
    html = owner_client.get(reverse("runs:list")).content.decode()
    assert "Iris baseline" in html and "Mallory" not in html
    assert reverse("live:detail", args=[run.pk]) in html
    assert f'id="run-row-{run.pk}"' in html  # the live list stream swaps rows by this id


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


def scores(run, variant, description, values, metric="accuracy", start_fold=1):
    """One FoldMetric per fold of `variant`, as the reporter stores them."""
    for fold, value in enumerate(values, start_fold):
        FoldMetric.objects.create(run=run, variant=variant, variant_description=description, fold=fold,
                                  metric=metric, value=value, fit_time=0.05)


def leaderboard_run(run):
    """Two variants with three folds each: B is better on accuracy, A on F1."""
    run.mark_running("w1")
    scores(run, 1, "A", [0.90, 0.92, 0.94])
    scores(run, 1, "A", [0.99, 0.99, 0.99], metric="f1_macro")
    scores(run, 2, "B", [0.96, 0.97, 0.98])
    scores(run, 2, "B", [0.50, 0.60, 0.70], metric="f1_macro")
    Run.objects.filter(pk=run.pk).update(finished_fits=6, total_fits=6)
    run.mark_completed({"best_score": 0.97})
    return run


def variant_order(html):
    return re.findall(r'<tr(?: class="best-row")?>\s*<td class="num">\d+</td>\s*<td class="variant-cell"><span class="variant-desc">(\w+)<', html)


def test_it_shows_the_leaderboard_ranked_with_mean_and_std(owner_client, run):
    leaderboard_run(run)
    html = owner_client.get(reverse("results:run", args=[run.pk])).content.decode()
    assert variant_order(html) == ["B", "A"]  # ranked by the primary metric, accuracy
    assert "0.9700 ± 0.0082" in html  # B's accuracy: mean ± population std
    assert "0.9200 ± 0.0163" in html and "0.6000 ± 0.0816" in html
    assert re.search(r'<tr class="best-row">\s*<td class="num">1</td>\s*<td class="variant-cell"><span class="variant-desc">B<', html)
    # The summary: labelled, formatted, and no raw keys.
    assert "Best Accuracy (mean ± std)" in html and "6 + refit" in html
    assert "best_score" not in html and "0.97<" not in html
    # Every fold, where the run page's "earlier rows" link lands.
    assert 'id="folds"' in html and html.count('class="result-fold-row"') == 6
    assert "Partial results" not in html


def test_it_sorts_the_leaderboard_by_any_metric_without_javascript(owner_client, run):
    leaderboard_run(run)
    url = reverse("results:run", args=[run.pk])
    html = owner_client.get(url, {"sort": "f1_macro", "dir": "better"}).content.decode()
    assert variant_order(html) == ["A", "B"]
    assert 'aria-sort="descending"' in html
    assert 'href="?sort=f1_macro&amp;dir=worse"' in html  # clicked again: the other direction
    html = owner_client.get(url, {"sort": "f1_macro", "dir": "worse"}).content.decode()
    assert variant_order(html) == ["B", "A"] and 'aria-sort="ascending"' in html
    html = owner_client.get(url, {"sort": "accuracy", "dir": "worse"}).content.decode()
    assert variant_order(html) == ["A", "B"]
    # An unknown column sorts by the primary metric rather than failing.
    response = owner_client.get(url, {"sort": "nonsense", "dir": "sideways"})
    assert response.status_code == 200 and variant_order(response.content.decode()) == ["B", "A"]


def test_it_marks_partial_results_and_the_unfinished_variants(owner_client, run):
    run.mark_running("w1")
    Run.objects.filter(pk=run.pk).update(total_folds=3)
    scores(run, 1, "Finished", [0.9, 0.9, 0.9])
    scores(run, 2, "Halfway", [1.0])
    run.mark_stopped()
    html = owner_client.get(reverse("results:run", args=[run.pk])).content.decode()
    assert "Partial results." in html and "The run stopped before it finished" in html
    assert re.search(r"Unfinished: <span class=\"variant-desc\">Halfway</span> \(1 of 3 folds\)", html)
    assert variant_order(html) == ["Finished", "Halfway"]  # one lucky fold does not rank first
    assert "chip-amber\">unfinished" in html
    assert "1.0000 ± —" in html and "1.0000 ± 0.0000" not in html  # one fold has no spread to show


def test_it_says_plainly_that_nothing_finished_before_a_failure(owner_client, run):
    run.mark_running("w1")
    run.mark_failed("ValueError: bad input", "")
    run.refresh_from_db()
    assert not run.partial
    html = owner_client.get(reverse("results:run", args=[run.pk])).content.decode()
    assert "Nothing finished before the run failed." in html
    # And the run page offers no Results button leading there.
    page = owner_client.get(reverse("live:detail", args=[run.pk])).content.decode()
    assert ">Results</a>" not in page


def test_it_offers_results_of_a_failed_run_that_has_some(owner_client, run):
    run.mark_running("w1")
    emit_fold(run, 1, 0.9)
    run.mark_failed("ValueError: bad input", "")
    page = owner_client.get(reverse("live:detail", args=[run.pk])).content.decode()
    assert ">Results</a>" in page


def test_it_hides_results_from_an_outsider(client, outsider, run):
    leaderboard_run(run)
    client.force_login(outsider)
    assert client.get(reverse("results:run", args=[run.pk])).status_code == 404
    assert client.get(reverse("results:run", args=[run.pk]), {"sort": "f1_macro"}).status_code == 404


def test_it_wraps_the_checksum_so_it_never_widens_the_page(owner_client, run, tmp_path):
    leaderboard_run(run)
    Run.objects.filter(pk=run.pk).update(model_file=str(tmp_path / "m.joblib"), model_sha256="ab" * 32)
    html = owner_client.get(reverse("results:run", args=[run.pk])).content.decode()
    assert f'<code class="sha">{"ab" * 32}</code>' in html


def test_it_shows_one_status_badge_on_every_page(owner_client, run):
    run.mark_running("w1")
    badge = 'class="badge badge-running" data-status="running"'
    for url in (reverse("runs:list"), reverse("live:detail", args=[run.pk]),
                reverse("results:run", args=[run.pk]), reverse("live:logs", args=[run.pk])):
        html = owner_client.get(url).content.decode()
        assert badge in html, url
        assert "css/status.css" in html and "favicon.svg" in html
    detail = owner_client.get(reverse("live:detail", args=[run.pk])).content.decode()
    assert 'id="run-badge" class="badge badge-running" data-status="running" role="status" aria-live="polite"' in detail


def test_it_links_a_rerun_to_the_run_it_reran(owner_client, run):
    from runs.control import rerun

    again = rerun(run)
    html = owner_client.get(reverse("live:detail", args=[again.pk])).content.decode()
    assert f'Re-run of <a href="{run.get_absolute_url()}">Iris baseline #{run.pk}</a>' in html
    assert "Re-run of" not in owner_client.get(reverse("live:detail", args=[run.pk])).content.decode()


def test_it_labels_the_fits_and_the_refit(owner_client, run):
    leaderboard_run(run)
    html = owner_client.get(reverse("live:detail", args=[run.pk])).content.decode()
    assert "<dt>Fits</dt><dd class=\"big\">6 + refit</dd>" in html
    assert "Models trained" not in html


def test_it_shows_no_estimate_unless_running(owner_client, run):
    run.mark_running("w1")
    Run.objects.filter(pk=run.pk).update(eta_seconds=40, finished_fits=3, total_fits=10)
    html = owner_client.get(reverse("live:detail", args=[run.pk])).content.decode()
    assert 'data-eta="40' in html and "~40 s" in html
    run.mark_cancelling()
    html = owner_client.get(reverse("live:detail", args=[run.pk])).content.decode()
    assert re.search(r'<span class="js-eta" data-eta=""[^>]*>—</span>', html) and "~40 s" not in html
    run.mark_stopped()
    html = owner_client.get(reverse("live:detail", args=[run.pk])).content.decode()
    assert re.search(r'<span class="js-eta" data-eta=""[^>]*>—</span>', html) and "~40 s" not in html


def test_it_shows_a_range_while_the_estimate_is_unsure(owner_client, run):
    run.mark_running("w1")
    Run.objects.filter(pk=run.pk).update(eta_seconds=180, eta_low=100, eta_high=290, finished_fits=3, total_fits=10)
    html = owner_client.get(reverse("live:detail", args=[run.pk])).content.decode()
    assert re.search(r'data-eta="180.0" data-eta-low="100.0"\s+data-eta-high="290.0">~1–5 min</span>', html)
    # Sure (the ends within a third of each other): the one value.
    Run.objects.filter(pk=run.pk).update(eta_low=170, eta_high=200)
    html = owner_client.get(reverse("live:detail", args=[run.pk])).content.decode()
    assert 'data-eta-low=""' in html and 'data-eta-high="">~3 min 00 s</span>' in html


def test_it_hides_the_fold_and_variant_chips_once_ended(owner_client, run):
    run.mark_running("w1")
    Run.objects.filter(pk=run.pk).update(current_fold=2, total_folds=3, current_variant=1, total_variants=2)
    html = owner_client.get(reverse("live:detail", args=[run.pk])).content.decode()
    assert re.search(r'id="run-fold" class="chip">Fold 2/3', html)
    run.mark_stopped()
    html = owner_client.get(reverse("live:detail", args=[run.pk])).content.decode()
    assert re.search(r'id="run-fold" class="chip" hidden>', html)
    assert re.search(r'id="run-variant" class="chip chip-wide" hidden>', html)


def test_it_gives_the_running_step_a_ticking_clock(owner_client, run):
    run.mark_running("w1")
    RunStep.objects.filter(run=run, name="load_data").update(status="running",
                                                             started_at=timezone.now() - timezone.timedelta(seconds=65))
    html = owner_client.get(reverse("live:detail", args=[run.pk])).content.decode()
    match = re.search(r'class="step-duration muted js-clock" data-elapsed="((?:6[5-9]|[7-9]\d)\.\d+)" data-ticking="1">1 min [0-3]\d s<', html)
    assert match, "the running step's clock"


def test_it_keeps_the_log_accessible(owner_client, run):
    run.mark_running("w1")
    emit_log(run, "fold one", fold=1, step="cross_validate")
    html = owner_client.get(reverse("live:detail", args=[run.pk])).content.decode()
    assert 'role="log"' in html and "onsubmit" not in html
    tags = re.findall(r'<button type="button" class="tag"[^>]*>', html)
    assert len(tags) == 2 and all('tabindex="-1"' in tag for tag in tags)
    assert re.search(r'class="progress-row" aria-live="polite"', html)


def test_it_shows_a_notice_for_a_page_that_is_not_a_number(owner_client, owner, experiment):
    for _ in range(30):
        Run.objects.create(owner=owner, experiment=experiment, name="Bulk", spec=experiment.spec, status="completed")
    response = owner_client.get(reverse("runs:list"), {"page": "abc"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "“abc” is not a page number; showing the first page." in html and "Page 1 of 2" in html
    html = owner_client.get(reverse("runs:list"), {"page": "9"}).content.decode()
    assert "There is no page 9; showing the last page." in html and "Page 2 of 2" in html
    assert "not a page number" not in owner_client.get(reverse("runs:list"), {"page": "2"}).content.decode()


def test_it_redirects_the_favicon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")
