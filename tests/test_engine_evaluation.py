"""The evaluation runner: scores the bundle an earlier run exported, with binary progress."""

import pytest
from django.conf import settings
from sklearn.datasets import load_iris
from sklearn.metrics import accuracy_score, f1_score

import engine
from engine import catalog
from runs import events
from runs.control import launch_run
from runs.models import FoldMetric, Run, RunEvent
from tests.test_engine_cv import wait_until_done


def test_it_evaluates_an_exported_model(worker, owner, outsider, iris_spec):
    source = wait_until_done(launch_run(owner, spec=iris_spec, name="Source"))
    assert source.status == Run.Status.COMPLETED, source.error_message

    spec = {"runner": "evaluation", "dataset": {"kind": "builtin", "name": "iris"}, "task": "classification",
            "evaluation": {"run": source.pk}, "metric": "f1_macro"}
    run = wait_until_done(launch_run(owner, spec=spec, name="Evaluate"))
    assert run.status == Run.Status.COMPLETED, run.error_message + run.traceback
    assert run.total_fits == 1 and run.finished_fits == 1 and run.progress == 1.0

    bundle = engine.load_bundle(settings.MEDIA_ROOT / source.model_file, source.model_sha256)
    X, y = load_iris(return_X_y=True)
    predicted = bundle.predict(X)
    assert run.summary["accuracy"] == pytest.approx(accuracy_score(y, predicted))
    assert run.best_score == pytest.approx(f1_score(y, predicted, average="macro"))
    assert run.summary["evaluated_run"] == source.pk
    assert FoldMetric.objects.filter(run=run, fold=1).count() == len(catalog.METRICS["classification"])
    assert run.model_file == ""  # an evaluation exports nothing

    stored = list(RunEvent.objects.filter(run=run).order_by("seq"))
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
    steps = [(e.data["step"], e.data["status"]) for e in stored if e.type == events.STEP_PROGRESS]
    assert steps == [(s, status) for s in ("load_bundle", "load_data", "validate_data", "evaluate")
                     for status in ("running", "completed")]
    assert stored[-1].type == events.JOB_COMPLETED
    assert not run.visible_to(outsider)


def test_it_refuses_a_bundle_that_changed_since_it_was_exported(worker, owner, iris_spec):
    source = wait_until_done(launch_run(owner, spec=iris_spec))
    spec = {"runner": "evaluation", "dataset": {"kind": "builtin", "name": "wine"}, "task": "classification",
            "evaluation": {"run": source.pk}}
    Run.objects.filter(pk=source.pk).update(model_sha256="0" * 64)
    run = wait_until_done(launch_run(owner, spec=spec))
    assert run.status == Run.Status.FAILED
    assert "has changed since it was exported" in run.error_message
    assert run.steps.get(name="load_bundle").status == "failed"


def test_it_fails_clearly_when_the_bundle_is_gone_from_the_storage(worker, owner, iris_spec):
    from django.core.files.storage import default_storage

    source = wait_until_done(launch_run(owner, spec=iris_spec))
    default_storage.delete(source.model_file)  # the worker reads bundles through the same storage
    spec = {"runner": "evaluation", "dataset": {"kind": "builtin", "name": "iris"}, "task": "classification",
            "evaluation": {"run": source.pk}}
    run = wait_until_done(launch_run(owner, spec=spec))
    assert run.status == Run.Status.FAILED
    assert f"The model bundle run-{source.pk}-model.zip is missing" in run.error_message
    assert run.steps.get(name="load_bundle").status == "failed"
