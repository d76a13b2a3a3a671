"""The model registry pages: /models/, a model's page, its verified download; owners and outsiders."""

import hashlib

import pytest
from django.urls import reverse

from experiments.models import RegisteredModel
from results import promotion
from runs.control import launch_run
from runs.models import Run
from tests.test_results_page import BUNDLE, completed_run, scores

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture
def run(owner, media, iris_spec):
    return completed_run(owner, media, iris_spec)


@pytest.fixture
def model(run, owner):
    return promotion.promote(run, owner, "iris-v1")


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def evaluation_run(owner, source, value, status="completed"):
    """An evaluation run of `source`'s model, as launched by the wizard's evaluation runner."""
    spec = {"runner": "evaluation", "evaluation": {"run": source.pk},
            "dataset": {"kind": "builtin", "name": "iris"}, "task": "classification", "metric": "accuracy"}
    run = launch_run(owner, spec=spec, name="Iris evaluation")
    run.mark_running("w")
    scores(run, 1, "LogisticRegression", [value])
    Run.objects.filter(pk=run.pk).update(best_score=value)
    if status == "completed":
        run.mark_completed({"best_score": value})
    return run


def test_it_lists_the_promoted_models(owner_client, owner, model, run):
    html = owner_client.get(reverse("models:list")).content.decode()
    assert f'<a href="/models/{model.pk}/">iris-v1</a>' in html
    assert f'<a href="/runs/{run.pk}/results/">Iris baseline #{run.pk}</a>' in html
    assert "<td>classification</td>" in html and "<td>Accuracy</td>" in html and "0.9700" in html
    assert model.sha256 in html and "by alice" in html
    assert f'href="/models/{model.pk}/download/"' in html


def test_it_has_a_models_link_in_the_nav(owner_client):
    html = owner_client.get(reverse("runs:list")).content.decode()
    assert '<li><a href="/models/">Models</a></li>' in html


def test_it_shows_an_empty_registry(owner_client):
    assert "No models yet" in owner_client.get(reverse("models:list")).content.decode()


def test_it_shows_a_models_page_with_its_evaluations(owner_client, owner, model, run):
    evaluation_run(owner, run, 0.9333)
    running = evaluation_run(owner, run, 0.5, status="running")
    html = owner_client.get(reverse("models:detail", args=[model.pk])).content.decode()
    assert "<h1>iris-v1</h1>" in html and model.sha256 in html
    assert "<dt>models.0.estimator</dt><dd>LogisticRegression</dd>" in html  # the source run's spec
    assert html.count('class="eval-row"') == 2 and "0.9333" in html
    assert f'href="/runs/{running.pk}/results/"' in html and 'aria-label="Run status: Running"' in html
    assert f'id="evaluate-link" href="/experiments/new/?evaluate_model={model.pk}"' in html


def test_it_lists_only_the_evaluations_of_this_models_run(owner_client, owner, media, iris_spec, model, run):
    other = completed_run(owner, media, iris_spec, name="Other")
    evaluation_run(owner, other, 0.4242)
    html = owner_client.get(reverse("models:detail", args=[model.pk])).content.decode()
    assert "Not evaluated yet." in html and "0.4242" not in html


def test_it_downloads_a_promoted_model_verified(owner_client, model):
    response = owner_client.get(reverse("models:download", args=[model.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == BUNDLE
    assert response["X-Model-SHA256"] == hashlib.sha256(BUNDLE).hexdigest() == model.sha256
    assert 'filename="iris-v1.joblib"' in response["Content-Disposition"]


def test_it_refuses_a_corrupted_promoted_model(owner_client, model):
    with open(model.file.path, "ab") as f:
        f.write(b"!")
    response = owner_client.get(reverse("models:download", args=[model.pk]))
    assert response.status_code == 409
    assert "does not match its recorded SHA-256" in response.content.decode()


def test_it_refuses_a_corrupted_promoted_model_over_the_api(client, owner, model):
    from rest_framework.authtoken.models import Token

    with open(model.file.path, "wb") as f:
        f.write(b"other bytes")
    token = Token.objects.create(user=owner)
    response = client.get(f"/api/v1/models/{model.pk}/download/", headers={"Authorization": f"Token {token.key}"})
    assert response.status_code == 409 and response.json()["expected_sha256"] == model.sha256


def test_it_keeps_the_model_when_the_run_is_deleted(owner_client, model, run, media, django_capture_on_commit_callbacks):
    bundle = media / run.model_file
    assert bundle.exists()
    with django_capture_on_commit_callbacks(execute=True):
        run.delete()
    assert not bundle.exists()  # the run's own bundle went with it; the model has its copy
    assert (media / model.file.name).exists()
    html = owner_client.get(reverse("models:list")).content.decode()
    assert "iris-v1" in html and "deleted" in html
    html = owner_client.get(reverse("models:detail", args=[model.pk])).content.decode()
    assert "The source run is gone" in html
    assert owner_client.get(reverse("models:download", args=[model.pk])).status_code == 200


def test_it_hides_models_from_an_outsider(client, outsider, model):
    client.force_login(outsider)
    assert "iris-v1" not in client.get(reverse("models:list")).content.decode()
    assert client.get(reverse("models:detail", args=[model.pk])).status_code == 404
    assert client.get(reverse("models:download", args=[model.pk])).status_code == 404


def test_it_shows_any_model_to_staff(client, staff, model):
    client.force_login(staff)
    assert client.get(reverse("models:detail", args=[model.pk])).status_code == 200
    assert client.get(reverse("models:download", args=[model.pk])).status_code == 200


def test_it_requires_login_for_the_registry(client, model):
    for url in (reverse("models:list"), reverse("models:detail", args=[model.pk]),
                reverse("models:download", args=[model.pk])):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert RegisteredModel.objects.count() == 1


def test_it_opens_the_wizard_on_the_evaluation_runner(owner_client, client, outsider, model, run):
    response = owner_client.get(f"/experiments/new/?evaluate_model={model.pk}")
    assert response.status_code == 302
    draft = owner_client.session["wizard:new"]
    spec = draft["spec"]
    assert spec["runner"] == "evaluation" and spec["evaluation"] == {"run": run.pk}
    assert spec["task"] == "classification" and spec["metric"] == "accuracy"

    client.force_login(outsider)
    assert client.get(f"/experiments/new/?evaluate_model={model.pk}").status_code == 404
