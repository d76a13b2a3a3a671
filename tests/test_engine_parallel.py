"""Parallel fits (engine/runners/parallel.py): the same scores as one at a time, every fold exactly once, and a
stop that ends the children."""

import copy
import threading

import psutil
import pytest

import engine
from runs import events
from runs.control import launch_run
from engine.runners import parallel
from engine.reporting import Reporter
from runs.models import FoldMetric, Run, RunEvent
from tests.helpers import wait_for

# loky children and Dask clusters are processes (tests/tiers.py).
pytestmark = pytest.mark.system

SPEC = {
    "runner": "cv", "task": "classification", "target": "target", "seed": 7, "metric": "accuracy",
    "dataset": {"kind": "synthetic", "generator": "classification", "n_samples": 400, "n_features": 8,
                "noise": 0.1, "seed": 3, "n_classes": 2},
    "preprocessing": [], "branches": [],
    "models": [{"estimator": "RandomForestClassifier", "label": "RF",
                "params": {"n_estimators": [10, 20], "max_depth": [3, None]}}],
    "cv": {"kind": "stratified_kfold", "folds": 3, "shuffle": True, "seed": 1},
}


class Recorder(Reporter):
    def __init__(self, stop_after=None):
        self.folds, self.stop_after, self.stopped = [], stop_after, threading.Event()
        self.timeline = []  # ("in_flight", fits) and ("fold_done", key), in the order they were reported

    def fold_done(self, **event):
        self.folds.append(event)
        self.timeline.append(("fold_done", (event["branch"], event["variant"], event["fold"])))

    def in_flight(self, fits):
        self.timeline.append(("in_flight", fits))

    def should_stop(self):
        if self.stop_after is not None and len(self.folds) >= self.stop_after:
            self.stopped.set()
            return True
        return False


def outcome_of(spec, tmp_path, reporter):
    from engine.spec import validate_spec

    return engine.execute(validate_spec(spec), reporter, tmp_path)


def scores_by_fold(reporter):
    return {(e["branch"], e["variant"], e["fold"]): e["metrics"] for e in reporter.folds}


def test_it_scores_every_fold_as_a_sequential_run_does(tmp_path):
    sequential, spread = Recorder(), Recorder()
    one = outcome_of({**SPEC, "n_jobs": 1}, tmp_path / "one", sequential)
    two = outcome_of({**SPEC, "n_jobs": 2}, tmp_path / "two", spread)
    assert scores_by_fold(spread) == scores_by_fold(sequential)  # bit for bit, fold by fold
    assert len(spread.folds) == len(scores_by_fold(spread)) == 4 * 3  # each (branch, variant, fold) once
    # The results do not depend on which fit finished first.
    assert two["variants"] == one["variants"]
    assert two["best_variant"] == one["best_variant"] and two["best_score"] == one["best_score"]
    finished = [e["finished"] for e in spread.folds]
    assert finished == list(range(1, 13))


def test_it_says_which_fits_run_at_once_and_where(tmp_path):
    reporter = Recorder()
    outcome_of({**SPEC, "n_jobs": 2}, tmp_path, reporter)
    snapshots = [fits for kind, fits in reporter.timeline if kind == "in_flight"]
    assert snapshots[-1] == []  # nothing is left running at the end
    assert max(len(fits) for fits in snapshots) == 2  # never more than the processes, and both were used
    assert all(len(fits) <= 2 for fits in snapshots)
    workers = {fit["worker"] for fits in snapshots for fit in fits}
    assert len(workers) == 2 and all(" pid " in worker for worker in workers)
    # Every fit was seen in flight before its result, and not after it.
    for index, (kind, item) in enumerate(reporter.timeline):
        if kind != "fold_done":
            continue
        before = [f for k, fits in reporter.timeline[:index] if k == "in_flight" for f in fits]
        after = [f for k, fits in reporter.timeline[index + 1:] if k == "in_flight" for f in fits]
        assert item in {(f["branch"], f["variant"], f["fold"]) for f in before}
        assert item not in {(f["branch"], f["variant"], f["fold"]) for f in after}
    assert {f["label"] for fits in snapshots for f in fits} == {
        f"RF(max_depth={d}, n_estimators={n})" for d in (3, None) for n in (10, 20)}


def test_it_names_the_fits_a_dead_child_took_with_it(tmp_path):
    spec = copy.deepcopy(SPEC)
    spec["models"][0]["params"] = {"n_estimators": [300, 400], "max_depth": [None]}
    spec["n_jobs"] = 2

    class KillsAChild(Recorder):
        def in_flight(self, fits):
            super().in_flight(fits)
            if len(fits) == 2 and not self.stopped.is_set():
                self.stopped.set()
                first = next(f for f in fits if f["fold"] == 1)
                psutil.Process(int(first["worker"].rsplit(" ", 1)[1])).kill()  # as the kernel's OOM killer would

    reporter = KillsAChild()
    with pytest.raises(engine.RunError) as raised:
        outcome_of(spec, tmp_path, reporter)
    message = str(raised.value)
    assert message.startswith("A fit process died")
    assert ("while fitting RF(max_depth=None, n_estimators=300) fold 1; RF(max_depth=None, n_estimators=300) "
            "fold 2 (one of these was on it)") in message
    assert "lower n_jobs" in message
    wait_for(lambda: not parallel.fit_processes(), timeout=5, message="the other children to end")


def test_it_stops_and_leaves_no_child_alive(tmp_path):
    spec = copy.deepcopy(SPEC)
    spec["models"][0]["params"] = {"n_estimators": [200, 300, 400], "max_depth": [None, 8]}
    spec["n_jobs"] = 2
    reporter = Recorder(stop_after=1)
    with pytest.raises(engine.Cancelled):
        outcome_of(spec, tmp_path, reporter)
    assert reporter.stopped.is_set()
    # Every child that fits is gone (loky's idle resource tracker stays to delete the memmapped data).
    wait_for(lambda: not parallel.fit_processes(), timeout=2, message="every fitting child to end")
    assert psutil.Process().children(recursive=True) == [] or all(
        "resource_tracker" in " ".join(c.cmdline()) for c in psutil.Process().children(recursive=True))


@pytest.mark.parametrize("n_jobs", [0, -2, 65, "two", 1.5, True])
def test_it_refuses_a_bad_n_jobs(n_jobs):
    from engine.spec import SpecError, validate_spec

    with pytest.raises(SpecError) as raised:
        validate_spec({**SPEC, "n_jobs": n_jobs})
    assert list(raised.value.errors) == ["n_jobs"]
    assert "Must be -1 (every core the worker may use)" in raised.value.errors["n_jobs"][0]


@pytest.mark.parametrize("runner", ["training"])
def test_it_refuses_n_jobs_for_a_runner_that_works_in_one_process(runner):
    from engine.spec import SpecError, validate_spec

    spec = {**SPEC, "runner": runner, "n_jobs": 2, "training": {"epochs": 3}, "models": [
        {"estimator": "SGDClassifier", "params": {}}]}
    with pytest.raises(SpecError) as raised:
        validate_spec(spec)
    assert raised.value.errors["n_jobs"] == [
        "A training run works in one process (n_jobs applies to cross-validation runs, whose fits are "
        "independent): leave it out or set 1."]
    assert validate_spec({**spec, "n_jobs": 1})["n_jobs"] == 1


def test_it_runs_a_parallel_run_through_a_worker_with_a_gap_free_stream(worker, owner):
    run = launch_run(owner, spec={**SPEC, "n_jobs": 2}, name="parallel")
    wait_for(lambda: Run.objects.filter(pk=run.pk, status__in=Run.TERMINAL).exists(), timeout=120,
             message="the parallel run to end")
    run.refresh_from_db()
    assert run.status == Run.Status.COMPLETED, run.error_message + run.traceback
    seqs = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    folds = list(RunEvent.objects.filter(run=run, type=events.JOB_METRICS).values_list("data", flat=True))
    keys = [(d["branch"], d["variant"], d["fold"]) for d in folds]
    assert len(keys) == len(set(keys)) == 12
    assert FoldMetric.objects.filter(run=run).values("branch", "variant", "fold").distinct().count() == 12
    sequential = Recorder()
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as scratch:
        outcome_of({**SPEC, "n_jobs": 1}, Path(scratch), sequential)
    stored = {(d["branch"], d["variant"], d["fold"]): d["metrics"] for d in folds}
    assert stored == scores_by_fold(sequential)
