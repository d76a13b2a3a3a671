"""The results page beyond the leaderboard: the fold chart, reproducibility, export, re-run, clone, promote;
and the one verified model download (experiments.downloads) behind every download."""

import hashlib

import pytest
from django.urls import reverse

from experiments.models import RegisteredModel
from runs.control import launch_run
from runs.models import FoldMetric, Run

pytestmark = pytest.mark.django_db

BUNDLE = b"model bundle bytes"


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


def scores(run, variant, description, values, metric="accuracy", branch="default"):
    for fold, value in enumerate(values, 1):
        FoldMetric.objects.create(run=run, branch=branch, variant=variant, variant_description=description,
                                  fold=fold, metric=metric, value=value, fit_time=0.05)


def completed_run(owner, media, spec, content=BUNDLE, name="Iris baseline"):
    """A completed run with two variants' fold scores and an exported bundle, as the engine leaves it."""
    run = launch_run(owner, spec=spec, name=name)
    run.mark_running("worker-7")
    scores(run, 1, "A", [0.90, 0.92, 0.94])
    scores(run, 2, "B", [0.96, 0.97, 0.98])
    path = media / "runs" / f"run-{run.pk}.joblib"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    Run.objects.filter(pk=run.pk).update(
        model_file=f"runs/{path.name}", model_sha256=hashlib.sha256(content).hexdigest(), best_score=0.97,
        finished_fits=6, library_versions={"scikit-learn": "1.5.2", "numpy": "2.1.0"}, data_hash="d" * 64)
    run.refresh_from_db()
    run.mark_completed({"best_score": 0.97})
    run.refresh_from_db()
    return run


@pytest.fixture
def run(owner, media, iris_spec):
    return completed_run(owner, media, iris_spec)


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def results_url(run, **query):
    url = reverse("results:run", args=[run.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_it_charts_the_best_rows_folds_by_default(owner_client, run):
    html = owner_client.get(results_url(run)).content.decode()
    assert 'id="fold-chart"' in html and '<svg class="fold-svg"' in html
    assert "Accuracy per fold: <span class=\"variant-desc\">B</span>" in html
    # Axes: tick labels and both axis titles, and a dot per fold with its score.
    assert ">Fold</text>" in html and ">Accuracy</text>" in html
    assert "B, fold 1: 0.9600" in html and "B, fold 3: 0.9800" in html
    assert "A, fold 1" not in html


def test_it_charts_the_row_picked_without_javascript(owner_client, run):
    html = owner_client.get(results_url(run, row="default/1", sort="accuracy", dir="worse")).content.decode()
    assert "A, fold 2: 0.9200" in html and "B, fold 2" not in html
    # The row links keep the sort, and the picked row is marked.
    assert 'href="?sort=accuracy&amp;dir=worse&amp;row=default/1#fold-chart"' in html
    assert html.count('aria-current="true"') == 1


def test_it_answers_htmx_with_the_chart_alone(owner_client, run):
    response = owner_client.get(results_url(run, row="default/1"), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="card" id="fold-chart"')
    assert "A, fold 3: 0.9400" in html and "Leaderboard" not in html


def test_it_falls_back_to_the_best_row_for_an_unknown_row(owner_client, run):
    html = owner_client.get(results_url(run, row="nope/99")).content.decode()
    assert "B, fold 1: 0.9600" in html


def test_it_shows_what_reproduces_the_run(owner_client, run):
    html = owner_client.get(results_url(run)).content.decode()
    assert 'id="reproduce"' in html
    assert f"<dt>Seed</dt><dd>{run.seed}</dd>" in html
    assert "d" * 64 in html and "worker-7" in html
    assert "scikit-learn <code>1.5.2</code>" in html
    assert "<dt>models.0.estimator</dt><dd>LogisticRegression</dd>" in html
    assert "<dt>models.0.params.C</dt><dd>[0.1, 1.0]</dd>" in html


def test_it_shows_the_checksum_with_a_copy_button_from_a_file(owner_client, run):
    html = owner_client.get(results_url(run)).content.decode()
    assert f'<span class="sha-box" id="model-sha"><code class="sha">{run.model_sha256}</code></span>' in html
    assert 'data-copy="#model-sha" hidden' in html  # shown by static/js/copy.js; no inline script
    assert "js/copy.js" in html and "onclick" not in html


def test_it_offers_clone_and_edit_in_the_wizard(owner_client, run):
    html = owner_client.get(results_url(run)).content.decode()
    assert f'id="clone-link" href="/experiments/new/?from_run={run.pk}"' in html


def test_it_reruns_the_run(owner_client, run):
    response = owner_client.post(reverse("results:rerun", args=[run.pk]))
    new = Run.objects.exclude(pk=run.pk).get()
    assert response.status_code == 302 and response["Location"] == new.get_absolute_url()
    assert new.rerun_of == run and new.spec == run.spec and new.status == Run.Status.QUEUED


def test_it_rejects_get_on_the_actions(owner_client, run):
    assert owner_client.get(reverse("results:rerun", args=[run.pk])).status_code == 405
    assert owner_client.get(reverse("results:promote", args=[run.pk])).status_code == 405


def test_it_promotes_and_then_says_where_it_went(owner_client, owner, run):
    response = owner_client.post(reverse("results:promote", args=[run.pk]), {"name": "iris-v1"}, follow=True)
    model = RegisteredModel.objects.get()
    assert model.owner == owner and model.run == run and model.sha256 == run.model_sha256
    assert model.score == 0.97 and model.metric == "accuracy"
    html = response.content.decode()
    assert "Promoted to the model registry as “iris-v1”." in html
    assert f'Promoted as <a href="/models/{model.pk}/">iris-v1</a>' in html


def test_it_refuses_a_promotion_without_a_name_or_with_a_taken_one(owner_client, run):
    html = owner_client.post(reverse("results:promote", args=[run.pk]), {"name": "  "}, follow=True).content.decode()
    assert "Give the model a name" in html
    owner_client.post(reverse("results:promote", args=[run.pk]), {"name": "iris-v1"})
    html = owner_client.post(reverse("results:promote", args=[run.pk]), {"name": "iris-v1"},
                             follow=True).content.decode()
    assert "You already have a model with this name." in html
    assert RegisteredModel.objects.count() == 1


def test_it_offers_promote_on_completed_runs_only(owner_client, owner, iris_spec):
    run = launch_run(owner, spec=iris_spec)
    run.mark_running("w")
    scores(run, 1, "A", [0.9])
    run.mark_stopped()
    html = owner_client.get(results_url(run)).content.decode()
    assert 'id="promote-btn"' not in html and "Promote is offered once the run has completed" in html
    html = owner_client.post(reverse("results:promote", args=[run.pk]), {"name": "x"}, follow=True).content.decode()
    assert "Only a completed run with an exported model can be promoted." in html
    assert not RegisteredModel.objects.exists()


def test_it_hides_the_results_and_their_actions_from_an_outsider(client, outsider, run):
    client.force_login(outsider)
    assert client.get(results_url(run)).status_code == 404
    assert client.get(results_url(run, row="default/1"), headers={"HX-Request": "true"}).status_code == 404
    assert client.post(reverse("results:rerun", args=[run.pk])).status_code == 404
    assert client.post(reverse("results:promote", args=[run.pk]), {"name": "stolen"}).status_code == 404
    assert client.get(reverse("results:model", args=[run.pk])).status_code == 404
    assert Run.objects.count() == 1 and not RegisteredModel.objects.exists()


def test_it_requires_login_for_the_actions(client, run):
    response = client.post(reverse("results:rerun", args=[run.pk]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# --- the one download -------------------------------------------------------------------------------------


def test_it_downloads_the_bundle_verified(owner_client, run):
    response = owner_client.get(reverse("results:model", args=[run.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == BUNDLE
    assert response["X-Model-SHA256"] == hashlib.sha256(BUNDLE).hexdigest()


def test_it_refuses_a_corrupted_bundle_with_a_clear_message(owner_client, run, media):
    (media / run.model_file).write_bytes(b"model bundle bytez")  # same size, one byte flipped
    response = owner_client.get(reverse("results:model", args=[run.pk]))
    assert response.status_code == 409
    html = response.content.decode()
    assert "does not match its recorded SHA-256" in html and run.model_sha256 in html
    assert "X-Model-SHA256" not in response


def test_it_refuses_a_corrupted_bundle_over_the_api_as_json(client, owner, run, media):
    from rest_framework.authtoken.models import Token

    (media / run.model_file).write_bytes(b"tampered")
    token = Token.objects.create(user=owner)
    response = client.get(f"/api/v1/runs/{run.pk}/model/", headers={"Authorization": f"Token {token.key}"})
    assert response.status_code == 409
    body = response.json()
    assert "does not match its recorded SHA-256" in body["detail"]
    assert body["expected_sha256"] == run.model_sha256
    assert body["actual_sha256"] == hashlib.sha256(b"tampered").hexdigest()


def test_it_refuses_a_bundle_without_a_recorded_checksum(owner_client, run):
    Run.objects.filter(pk=run.pk).update(model_sha256="")
    response = owner_client.get(reverse("results:model", args=[run.pk]))
    assert response.status_code == 409 and "cannot be verified" in response.content.decode()
