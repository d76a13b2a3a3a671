"""Parallel fits (engine/parallel.py): the same scores as one at a time, every fold exactly once, and a
stop that ends the children."""

import copy
import threading

import psutil
import pytest

import engine
from runs import events
from runs.control import launch_run
from engine import parallel
from engine.reporting import Reporter
from runs.models import FoldMetric, Run, RunEvent
from tests.helpers import wait_for

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

    def fold_done(self, **event):
        self.folds.append(event)

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
