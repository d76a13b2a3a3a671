"""The worker announces a small write batch before it commits it (events.PENDING_TYPE), so a daphne process
with a fragment watcher renders it meanwhile: only while some process marks the run (events.html_group), with
the messages exactly as they are then stored when its guess of the seqs holds. The hub's side is in
tests/test_fanout.py."""

import pytest

from runs import events, publisher
from runs.models import append_events
from runs.reporter import DbReporter
from tests.test_publisher import Listener
from tests.test_reporter import run  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def threaded():
    previous = events.use_publisher(publisher.ThreadedPublisher())
    yield
    events.use_publisher(previous)


def next_messages(listener, run_id, count):
    """The next `count` layer messages of the run's group, announcements included."""
    got = listener.read(lambda got: sum(g == events.group_name(run_id) for g, _ in got) >= count)
    return [m for g, m in got if g == events.group_name(run_id)]


def test_it_announces_each_batch_before_it_commits_while_a_page_watches(run, threaded):  # noqa: F811
    # The listener stands in for daphne: subscribed to the run's group, and to its html group as a process
    # with a fragment watcher is.
    listener = Listener(events.group_name(run.pk), events.html_group(run.pk))
    reporter = DbReporter(run)
    try:
        reporter.log("info", "line 0")
        assert [m["type"] for m in next_messages(listener, run.pk, 1)] == [events.LAYER_TYPE]  # the publish counts
        for i in range(1, 4):
            reporter.log("info", f"line {i}")
            pending, stored = next_messages(listener, run.pk, 2)
            assert (pending["type"], stored["type"]) == (events.PENDING_TYPE, events.LAYER_TYPE)
            assert pending["events"] == stored["events"]  # exactly what was then stored, seqs and all
            assert stored["events"][0]["data"]["message"] == f"line {i}"
        reporter.fold_done(
            branch="default", variant=1, description="LogisticRegression(C=1)", fold=1,
            metrics={"accuracy": 0.9}, fit_time=0.01, primary_metric="accuracy", primary=0.9, running_mean=0.9,
            finished=1, total=5, eta_seconds=1.0, best_score=0.9,
        )
        pending, stored = next_messages(listener, run.pk, 2)
        assert pending["events"] == stored["events"] and stored["events"][0]["type"] == events.JOB_METRICS
    finally:
        reporter.close()


def test_it_announces_a_wrong_guess_of_the_seqs_that_the_stored_batch_then_corrects(run, threaded):  # noqa: F811
    listener = Listener(events.group_name(run.pk), events.html_group(run.pk))
    reporter = DbReporter(run)
    try:
        reporter.log("info", "line 0")
        next_messages(listener, run.pk, 1)
        append_events(run, [(events.JOB_LOG, {"level": "info", "message": "from elsewhere"})])
        assert next_messages(listener, run.pk, 1)[0]["events"][0]["data"]["message"] == "from elsewhere"
        reporter.log("info", "line 1")
        pending, stored = next_messages(listener, run.pk, 2)
        # The writer guessed the seq that the other append took; the stored batch has the real one.
        assert pending["events"][0]["seq"] == stored["events"][0]["seq"] - 1
        assert stored["events"][0]["seq"] == run.events.order_by("seq").last().seq
        reporter.log("info", "line 2")
        pending, stored = next_messages(listener, run.pk, 2)
        assert pending["events"] == stored["events"]  # the guess holds again
    finally:
        reporter.close()


def test_it_announces_nothing_for_a_run_no_page_watches(run, threaded):  # noqa: F811
    listener = Listener(events.group_name(run.pk))  # an API client's process: no html group
    reporter = DbReporter(run)
    try:
        for i in range(4):
            reporter.log("info", f"line {i}")
            assert [m["type"] for m in next_messages(listener, run.pk, 1)] == [events.LAYER_TYPE]
    finally:
        reporter.close()
