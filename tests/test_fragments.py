"""live.fragments: a batch of events becomes the run page's regions from the events alone, with no database read,
so a daphne process renders each batch once whoever watches."""

import re

import pytest

from runs import events
from live import fragments

RUN = 7
TS = "2026-11-23T10:15:02.311000+00:00"


def message(seq, event):
    type_, data = event
    return {"seq": seq, "type": type_, "ts": TS, "run": RUN, "data": data}


def fold_done(seq, fold, score, finished, total=10, running_mean=None, best=None):
    return message(seq, events.metrics(
        branch="default", variant=2, variant_description="LogisticRegression(C=1.0)", fold=fold, fit_time=0.0312,
        metrics={"accuracy": score, "f1_macro": score - 0.01, "roc_auc": score + 0.01}, primary_metric="accuracy",
        primary=score, running_mean=running_mean if running_mean is not None else score, finished_fits=finished,
        total_fits=total, eta_seconds=12.0, elapsed_seconds=30.5, best_score=best, message="Fitting fold 3/5 - LR",
    ))


@pytest.mark.django_db  # to count queries; none may happen
def test_it_renders_a_metrics_event_without_a_database_read(django_assert_num_queries):
    batch = [fold_done(41, 3, 0.95, finished=8, running_mean=0.93, best=0.96)]

    with django_assert_num_queries(0):
        html = fragments.render_messages(RUN, batch)

    # One new row, one chart point, the figures above them, and the progress of the same moment.
    row = re.search(r'<div class="mt-row fold-row" role="row" data-seq="41">(.*?)</div>', html).group(1)
    assert [c for c in re.findall(r'role="cell"[^>]*>([^<]*)<', row)] == ["3", "#2", "0.9500", "0.9400", "0.9600",
                                                                          "0.03 s"]
    assert 'data-seq="41" data-k="default/2" data-y="0.95" data-m="0.93" data-n="8"' in html  # the 8th fit scored
    assert 'id="running-mean">0.9300<' in html and 'id="best-so-far">0.9600<' in html
    assert 'id="fold-count">8<' in html
    assert "<dd>8 / 10</dd>" in html and 'aria-valuenow="80.0"' in html  # fits and bar agree with the rows
    assert "Fitting fold 3/5 - LR" in html
    assert 'data-last="41"' in html


@pytest.mark.django_db  # to count queries; none may happen
def test_it_links_the_rows_the_table_no_longer_shows_to_the_results(django_assert_num_queries):
    with django_assert_num_queries(0):
        html = fragments.render_messages(RUN, [fold_done(90, 2, 0.9, finished=40, total=50)])

    # Page-relative: the same bytes serve the owner's /runs/<id>/ and a share link's /s/<token>/.
    assert '10 earlier rows in <a href="results/#folds">the results</a>' in html
    assert "earlier rows" not in fragments.render_messages(RUN, [fold_done(91, 2, 0.9, finished=30, total=50)])


@pytest.mark.django_db  # to count queries; none may happen
def test_it_renders_a_terminal_batch_from_its_events(django_assert_num_queries):
    batch = [
        message(50, events.step("cross_validate", "Cross-validate", "completed", elapsed_seconds=61.5)),
        message(51, events.status_event("stopped", "cancelling", message="Stopped by request", partial=True,
                                        steps=[{"step": "refit_best", "label": "Refit best", "status": "interrupted"}])),
    ]

    with django_assert_num_queries(0):
        html = fragments.render_messages(RUN, batch)

    assert 'id="run-badge" hx-swap-oob="true" class="badge badge-stopped"' in html
    assert 'id="stop-form"' not in html and 'href="results/"' in html  # partial results: a way in (page-relative)
    assert f"/runs/{RUN}/results/" not in html  # which a share link's page could not follow
    assert "Finished folds are kept" in html
    assert re.search(r'id="step-cross_validate" class="step step-completed".*?1 min 02 s', html, re.S)
    assert re.search(r'id="step-refit_best" class="step step-interrupted"', html)
    assert re.search(r'id="run-fold" class="chip" hx-swap-oob="true" hidden', html)  # chips go once it ended
    assert 'data-terminal="1"' in html


@pytest.mark.django_db  # to count queries; none may happen
def test_it_replaces_the_log_with_the_newest_lines_of_a_long_batch(django_assert_num_queries):
    batch = [message(i, events.log_line("info", f"line {i}")) for i in range(1, 1001)]

    with django_assert_num_queries(0):
        html = fragments.render_messages(RUN, batch)

    assert html.count('class="log-line level-') == fragments.LIVE_LOG_LINES
    assert 'data-seq="801"' in html and 'data-seq="800"' not in html
    assert re.search(r'id="log-older".*?class="load-older"(?! hidden)', html, re.S)


def test_it_shows_the_same_numbers_on_the_page_as_the_events_did(transactional_db, owner, experiment):
    """A page load and the live stream print a fold's row, chart point, figures and progress through the same
    builders (metric_row, metrics_stats, progress_text), so they print the same text."""
    from runs.control import launch_run
    from runs.models import RunEvent
    from runs.reporter import DbReporter
    from results.leaderboard import metric_names

    run = launch_run(owner, experiment=experiment)
    run.mark_running("w1")
    reporter = DbReporter(run, progress_interval=0)
    names = metric_names(run.task)  # the engine scores every metric of the task
    assert names[0] == "accuracy" and len(names) > 2
    for fold, score, mean in ((1, 0.9, 0.9), (2, 0.8125, 0.85625)):
        metrics = {name: score / (i + 1) for i, name in enumerate(names)}
        reporter.fold_done(branch="scaled", variant=1, description="LR <b>", fold=fold,
                           metrics=metrics, fit_time=0.125, primary_metric="accuracy",
                           primary=score, running_mean=mean, finished=fold, total=6, eta_seconds=5,
                           best_score=mean)
    reporter.close()
    run.refresh_from_db()

    page = fragments.page_context(run)
    live = [m for m in (e.to_message() for e in RunEvent.objects.filter(run=run).order_by("seq"))
            if m["type"] == events.JOB_METRICS]
    stream = fragments.render_messages(run.pk, live)
    for row in page["metrics"]["rows"]:
        assert fragments.partial("metric_row", row=row) in stream
    for point in page["metrics"]["points"]:
        assert fragments.partial("chart_point", point=point) in stream
    assert fragments.partial("metrics_stats", stats=page["metrics"]["stats"], metrics=page["metrics"],
                             run_id=run.pk, oob=True) in stream
    assert page["progress"]["fits"] == "2 / 6" and page["progress"]["percent"] == "33.3"
    row = page["metrics"]["rows"][0]  # the newest first
    assert row["cells"][:2] == [(True, "0.8125"), (False, "0.4062")] and row["fit"] == "0.13"  # halves round up
    assert page["metrics"]["stats"]["running_mean"] == "0.8562" and page["metrics"]["stats"]["count"] == "2"
    assert "LR &lt;b&gt;" in stream


def test_it_renders_a_stored_log_line_as_its_event_did(transactional_db, owner, experiment):
    """The page (LogEntry rows) and the stream (events) print a log line through one builder, log_line."""
    from runs.control import launch_run
    from runs.models import RunEvent
    from runs.reporter import DbReporter

    run = launch_run(owner, experiment=experiment)
    run.mark_running("w1")
    reporter = DbReporter(run, progress_interval=0)
    reporter.log("warning", "fold <b>2</b> was slow", fold=2)
    reporter.log("info", "no fold at all")
    reporter.close()

    stored, _ = fragments.latest_logs(run.pk)
    live = [m for m in (e.to_message() for e in RunEvent.objects.filter(run=run).order_by("seq"))
            if m["type"] == events.JOB_LOG]
    page = fragments.partial("log_rows", logs=stored)
    stream = fragments.partial("log_rows", logs=[fragments.log_from_event(m) for m in live])
    assert page == stream
    assert page.count('class="log-line level-') == 2
    assert 'data-fold="2"' in page and "fold &lt;b&gt;2&lt;/b&gt; was slow" in page
    first = re.search(r'<time datetime="([^"]+)">(\d\d:\d\d:\d\d)</time>', page)
    assert first.group(1) == live[0]["ts"] and first.group(2) == live[0]["ts"][11:19]  # UTC, as TIME_ZONE
    # An event without a readable ts prints no time rather than the time of rendering.
    assert [fragments.log_from_event({"seq": 9, "ts": ts, "data": {}})["clock"] for ts in (None, "soon")] == ["", ""]


def test_it_says_how_far_a_stopped_run_got_not_the_fold_it_was_on(transactional_db, owner, experiment):
    """After Stop the progress line reads "Stopped after 7 of 25 fits", live (from the stop event) and on a page
    load alike; "Fitting fold 2/5" would say the run still works."""
    from runs.control import launch_run
    from runs.models import Run, RunEvent

    run = launch_run(owner, experiment=experiment)
    run.mark_running("w1")
    Run.objects.filter(pk=run.pk).update(finished_fits=7, total_fits=25, message="Fitting fold 2/5 - LR")
    run.mark_cancelling()
    run.mark_stopped()
    stop = RunEvent.objects.filter(run=run).order_by("-seq").first().to_message()
    for html in (fragments.render_messages(run.pk, [stop]), fragments.full_state(Run.objects.get(pk=run.pk))):
        progress = re.search(r'<section id="run-progress".*?</section>', html, re.S).group(0)
        assert '<span id="progress-message" class="progress-message">Stopped after 7 of 25 fits</span>' in progress
        assert "Fitting" not in progress and "<dd>7 / 25</dd>" in progress and 'aria-valuenow="28.0"' in progress
