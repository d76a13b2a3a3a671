"""Unknown and misspelt spec fields are refused, by name, wherever a spec comes in: they used to vanish."""

import copy
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient
from hypothesis import given, settings as hypothesis_settings, strategies as st

from experiments.models import Experiment
from engine.spec import SPEC_FIELDS, SpecError, validate_spec
from runs.models import Run
from tests.conftest import IRIS_SPEC


def errors_of(spec):
    with pytest.raises(SpecError) as raised:
        validate_spec(spec)
    return raised.value.errors


def iris(**changes):
    spec = copy.deepcopy(IRIS_SPEC)
    spec.update(changes)
    return spec


def test_it_suggests_the_field_a_misspelt_key_meant():
    assert errors_of(iris(metirc="f1_macro")) == {"metirc": ["Unknown field 'metirc'. Did you mean 'metric'?"]}
    nested = iris(cv={"kind": "stratified_kfold", "fold": 5})
    assert errors_of(nested) == {"cv.fold": ["Unknown field 'fold'. Did you mean 'folds'?"]}


def test_it_says_where_a_field_written_one_level_too_high_belongs():
    message = errors_of(iris(fold=10))["fold"][0]
    assert message == 'Unknown field \'fold\'. Did you mean \'folds\'? It belongs inside "cv": {"cv": {"folds": …}}.'


def test_it_lists_the_known_fields_when_nothing_is_close():
    message = errors_of(iris(zzzz=1))["zzzz"][0]
    assert message.startswith("Unknown field 'zzzz'. Known fields here: runner, task, dataset")


def test_it_reports_every_unknown_field_at_once_at_every_level():
    spec = iris(n_jbos=-1, colour="blue")
    spec["dataset"]["nmae"] = "wine"
    spec["models"][0]["parms"] = {"C": [1.0]}
    spec["models"][0]["params"]["max_iters"] = [5]
    spec["preprocessing"] = [{"name": "standard_scaler", "param": {}}]
    spec["branches"] = [{"name": "a", "preprocesing": []}]
    spec["limits"] = {"memory": 1024}
    errors = errors_of(spec)
    assert set(errors) == {"n_jbos", "colour", "dataset.nmae", "models.0.parms", "models.0.params.max_iters",
                           "preprocessing.0.param", "branches.0.preprocesing", "limits.memory"}
    assert errors["n_jbos"] == ["Unknown field 'n_jbos'. Did you mean 'n_jobs'?"]
    assert errors["dataset.nmae"] == ["Unknown field 'nmae'. Did you mean 'name'?"]
    assert errors["models.0.params.max_iters"] == [
        "LogisticRegression has no parameter 'max_iters'. Did you mean 'max_iter'?"]
    assert errors["limits.memory"] == ["Unknown field 'memory'. Did you mean 'memory_mb'?"]


def test_it_checks_the_fields_of_each_runner_and_dataset_kind():
    training = iris(runner="training", models=[{"estimator": "SGDClassifier"}], training={"epoch": 3})
    assert errors_of(training) == {"training.epoch": ["Unknown field 'epoch'. Did you mean 'epochs'?"]}
    synthetic = iris(dataset={"kind": "synthetic", "n_sample": 100}, target="target")
    assert errors_of(synthetic) == {"dataset.n_sample": ["Unknown field 'n_sample'. Did you mean 'n_samples'?"]}


@hypothesis_settings(max_examples=40, deadline=None)
@given(st.sampled_from(["builtin", "synthetic"]), st.integers(2, 10), st.booleans())
def test_it_accepts_its_own_normalised_specs(kind, folds, shuffle):
    dataset = {"kind": "builtin", "name": "iris"} if kind == "builtin" else {"kind": "synthetic", "n_classes": 3}
    spec = validate_spec(iris(dataset=dataset, cv={"folds": folds, "shuffle": shuffle}, limits={"memory_mb": 512}))
    assert validate_spec(spec) == spec
    assert set(spec) <= set(SPEC_FIELDS)


@pytest.mark.django_db
def test_it_answers_400_naming_the_field_in_the_api(owner):
    api = APIClient()
    api.force_authenticate(owner)
    response = api.post("/api/v1/experiments/", {"name": "Typo", "spec": iris(fold=5)}, format="json")
    assert response.status_code == 400
    assert list(response.json()["spec"]) == ["fold"]
    assert "Did you mean 'folds'?" in response.json()["spec"]["fold"][0]
    assert not Experiment.objects.exists()


@pytest.mark.django_db
def test_it_shows_the_field_in_the_admins_spec_editor(client, owner, staff):
    client.force_login(staff)
    data = {"owner": owner.pk, "name": "Typo", "description": "", "spec": json.dumps(iris(metirc="accuracy"))}
    response = client.post(reverse("admin:experiments_experiment_add"), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["spec"] == [
        "metirc: Unknown field 'metirc'. Did you mean 'metric'?"]
    assert not Experiment.objects.exists()


@pytest.mark.django_db
def test_it_refuses_the_field_from_the_command_line(owner, tmp_path):
    path = tmp_path / "typo.json"
    path.write_text(json.dumps(iris(n_job=2)))
    with pytest.raises(CommandError) as raised:
        call_command("run_experiment", "--spec", str(path), "--user", "alice")
    assert raised.value.returncode == 2
    assert "  n_job: Unknown field 'n_job'." in str(raised.value)
    assert not Run.objects.exists()
