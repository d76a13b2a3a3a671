"""Run status transitions: every legal move, every illegal one, and the event each move appends."""

import itertools

import pytest

from runs import events
from runs.models import FoldMetric, IllegalTransition, Run, RunEvent

pytestmark = pytest.mark.django_db

S = Run.Status
LEGAL = {
    (S.QUEUED, S.RUNNING),
    (S.QUEUED, S.STOPPED),
    (S.QUEUED, S.FAILED),
    (S.RUNNING, S.CANCELLING),
    (S.RUNNING, S.COMPLETED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.STOPPED),
    (S.CANCELLING, S.STOPPED),
    (S.CANCELLING, S.FAILED),
}
# Written out rather than derived from Run.TRANSITIONS, so a change to the table shows up here as a
# failing test instead of silently changing what is allowed.
ALL_MOVES = list(itertools.product(S.values, S.values))
ILLEGAL = [move for move in ALL_MOVES if move not in LEGAL]
TERMINAL = [S.COMPLETED, S.FAILED, S.STOPPED]


@pytest.fixture
def make_run(iris_spec):
    def make(owner, status=S.QUEUED, **fields):
        return Run.objects.create(owner=owner, name="Iris run", spec=iris_spec, status=status, **fields)

    return make


def stored_events(run):
    return list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", "type", "data"))


def test_it_knows_the_legal_moves():
    table = {(old, new) for old, targets in Run.TRANSITIONS.items() for new in targets}
    assert table == LEGAL
    assert len(ILLEGAL) == 36 - len(LEGAL)


@pytest.mark.parametrize(("old", "new"), sorted(LEGAL))
def test_it_makes_every_legal_move_and_appends_its_event(owner, make_run, old, new):
    run = make_run(owner, old)

    run.transition(new)

    run.refresh_from_db()
    assert run.status == new
    assert (run.finished_at is not None) == (new in TERMINAL)
    # A run's end also says how far it got (no fits here), for the progress line a page shows from the event.
    reached = {"finished_fits": 0, "total_fits": 0} if new in TERMINAL else {}
    assert stored_events(run) == [(1, events.status_event_type(new), {"status": new, "previous": old, **reached})]
    assert run.last_seq == 1


@pytest.mark.parametrize(("old", "new"), sorted(ILLEGAL))
def test_it_refuses_every_illegal_move_and_leaves_the_run_untouched(owner, make_run, old, new):
    run = make_run(owner, old, message="before")

    with pytest.raises(IllegalTransition, match=f"is {old}; it cannot become {new}"):
        run.transition(new, message="after")

    run.refresh_from_db()
    assert run.status == old
    assert run.message == "before"
    assert run.finished_at is None
    assert stored_events(run) == []
    assert run.last_seq == 0


@pytest.mark.parametrize("terminal", TERMINAL)
def test_it_never_changes_a_terminal_status(owner, make_run, terminal):
    run = make_run(owner, S.RUNNING)
    run.transition(terminal)
    finished_at = Run.objects.get(pk=run.pk).finished_at

    for target in S.values:
        with pytest.raises(IllegalTransition):
            run.transition(target)
    for mark in (run.mark_running, run.mark_cancelling, lambda: run.mark_completed({}), lambda: run.mark_failed("x"),
                 run.mark_stopped):
        with pytest.raises(IllegalTransition):
            mark()

    run.refresh_from_db()
    assert run.status == terminal
    assert run.finished_at == finished_at
    assert run.error_message == ""
    assert len(stored_events(run)) == 1


def test_it_checks_the_status_in_the_database_not_the_stale_object(owner, make_run):
    run = make_run(owner, S.RUNNING)
    stale = Run.objects.get(pk=run.pk)
    run.mark_completed({"best_score": 0.9})

    # `stale` still says running; the row lock reads the truth and refuses.
    with pytest.raises(IllegalTransition, match="is completed"):
        stale.mark_failed("worker died")
    assert Run.objects.get(pk=run.pk).status == S.COMPLETED


def test_it_walks_a_whole_life_with_one_event_per_move(owner, make_run):
    run = make_run(owner)

    run.mark_running(worker_name="w1", seed=7)
    assert run.started_at is not None and run.heartbeat_at == run.started_at
    run.mark_cancelling()
    assert run.cancel_requested_at is not None
    run.mark_stopped("Stopped by request")

    run.refresh_from_db()
    assert (run.status, run.worker_name, run.seed, run.message) == (S.STOPPED, "w1", 7, "Stopped by request")
    assert run.finished_at >= run.started_at
    assert [(seq, data["previous"], data["status"]) for seq, _, data in stored_events(run)] == [
        (1, S.QUEUED, S.RUNNING),
        (2, S.RUNNING, S.CANCELLING),
        (3, S.CANCELLING, S.STOPPED),
    ]
    assert stored_events(run)[-1][2]["partial"] is False


def test_it_completes_with_its_summary(owner, make_run):
    run = make_run(owner, S.RUNNING)

    run.mark_completed({"best_score": 0.95, "metric": "accuracy"}, best_score=0.95)

    run.refresh_from_db()
    assert (run.status, run.progress, run.best_score, run.message) == (S.COMPLETED, 1.0, 0.95, "Completed")
    assert run.progress_record()["percent"] == 100.0
    [(seq, type_, data)] = stored_events(run)
    assert type_ == events.JOB_COMPLETED
    assert data == {"status": "completed", "previous": "running", "summary": {"best_score": 0.95, "metric": "accuracy"},
                    "has_model": False, "runner": "cv", "finished_fits": 0, "total_fits": 0}


def test_it_fails_with_message_and_traceback_and_notes_partial_results(owner, make_run):
    run = make_run(owner, S.RUNNING)
    FoldMetric.objects.create(run=run, variant=1, fold=1, metric="accuracy", value=0.9)

    run.mark_failed("Out of memory", "Traceback ...")

    run.refresh_from_db()
    assert (run.status, run.error_message, run.traceback) == (S.FAILED, "Out of memory", "Traceback ...")
    assert run.partial is True
    [(_, type_, data)] = stored_events(run)
    assert type_ == events.JOB_FAILED
    assert data["message"] == "Out of memory" and "traceback" not in data


def test_it_stops_a_queued_run_without_partial_results(owner, make_run):
    run = make_run(owner)

    run.mark_stopped("Cancelled before it started")

    run.refresh_from_db()
    assert (run.status, run.partial, run.started_at) == (S.STOPPED, False, None)
    assert stored_events(run)[0][2] == {
        "status": "stopped", "previous": "queued", "message": "Cancelled before it started", "partial": False,
        "runner": "cv", "finished_fits": 0, "total_fits": 0,
    }


def test_it_reports_terminal_and_active(owner, make_run):
    for status in S.values:
        run = make_run(owner, status)
        assert run.is_terminal == (status in TERMINAL)
        assert run.is_active == (status not in TERMINAL)
        assert run.can_stop == (status in (S.QUEUED, S.RUNNING))


def test_it_is_visible_to_its_owner_and_staff_only(owner, outsider, staff, make_run):
    run = make_run(owner)

    assert run.visible_to(owner)
    assert run.visible_to(staff)
    assert not run.visible_to(outsider)


@pytest.mark.parametrize(
    "end, step_status",
    [(S.STOPPED, "interrupted"), (S.FAILED, "failed"), (S.COMPLETED, "completed")],
)
def test_it_closes_the_running_step_when_the_run_ends(owner, make_run, end, step_status):
    from runs.models import RunStep

    run = make_run(owner, status=S.RUNNING)
    done = RunStep.objects.create(run=run, name="load_data", order=0, status="completed")
    cut = RunStep.objects.create(run=run, name="cross_validate", order=1, status="running")
    pending = RunStep.objects.create(run=run, name="export", order=2)
    if end == S.COMPLETED:
        cut.status = "completed"
        cut.save()
    run.transition(end)

    cut.refresh_from_db()
    assert cut.status == step_status
    assert cut.finished_at is not None or end == S.COMPLETED
    done.refresh_from_db()
    pending.refresh_from_db()
    assert (done.status, pending.status) == ("completed", "pending")


@pytest.mark.django_db(transaction=True)
def test_it_deletes_a_run_with_the_rows_a_writer_committed_while_it_waited(owner, make_run):
    # The event tables have no foreign key in the database (runs.models.appended_to_run). A writer holds the
    # run's claim while the run is deleted; its rows must go with the run, not outlive it. Without the lock
    # the deletion takes first (lock_before_delete), PostgreSQL deletes the rows it can see, waits for the run
    # row, and the writer's batch is left behind.
    import threading

    from django.db import connection, transaction
    from django.utils import timezone

    from runs import rows
    from runs.models import LogEntry
    from runs.report_writer import EVENT_FIELDS, LOG_FIELDS
    from tests.helpers import wait_for

    run = make_run(owner, status=S.RUNNING)
    make_run(owner, status=S.RUNNING).log("info", "another run's line")  # stays
    deleting, failures = threading.Event(), []

    def deletion_waits():
        if connection.vendor != "postgresql":
            return deleting.is_set()  # SQLite: the writer holds the database's write lock; nothing can go first
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # a transaction sees one snapshot of the view
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND wait_event_type = 'Lock'")
            return cursor.fetchone()[0] > 0

    def write():
        try:
            with transaction.atomic():
                first, _ = rows.claim(Run, run.pk, 1, {"message": "writing"}, Run.TERMINAL)
                threading.Thread(target=delete).start()
                wait_for(deletion_waits, message="the deletion to wait for the writer")
                now = timezone.now()
                line = {"level": "info", "message": "late line", "step": "", "fold": None, "branch": "",
                        "variant": None}
                rows.insert_rows(RunEvent, EVENT_FIELDS, [(run.pk, first, events.JOB_LOG, rows.adapt_json(line),
                                                           rows.adapt_datetime(now))])
                rows.insert_rows(LogEntry, LOG_FIELDS, [(run.pk, first, rows.adapt_datetime(now), "info",
                                                         "late line", "", None, "", None)])
        except Exception as e:  # noqa: BLE001 - reported below, in the test's thread
            failures.append(e)
        finally:
            connection.close()

    def delete():
        try:
            deleting.set()
            Run.objects.get(pk=run.pk).delete()
        except Exception as e:  # noqa: BLE001
            failures.append(e)
        finally:
            connection.close()

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(60)
    wait_for(lambda: not Run.objects.filter(pk=run.pk).exists(), message="the run to be deleted")
    assert failures == []
    assert not RunEvent.objects.filter(run_id=run.pk).exists()
    assert not LogEntry.objects.filter(run_id=run.pk).exists()
    assert LogEntry.objects.filter(message="another run's line").count() == 1
