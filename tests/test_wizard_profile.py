"""The wizard starts from the data profile: the suggested target and task, an imputer per column kind where
values are missing, encoding when text columns exist, flagged columns proposed for exclusion, a first model;
and its Review step lists, all at once and in its own words, every problem that would fail "Validate data".

The data are made in the tests (tests/datasets_like.py): penguins-like, Titanic-like and diamonds-like."""

import pytest
from django.test import Client

from experiments.models import Experiment
from runs.models import Run
from tests.datasets_like import diamonds_like, penguins_like, titanic_like
from tests.helpers import start_worker, wait_for
from tests.test_wizard import NEW, alice, media, post, upload  # noqa: F401 (fixtures: the owner, MEDIA_ROOT)
from tests.wizard_form import defaults

STEPS = ["dataset", "target", "preprocessing", "models", "cv", "runner"]


@pytest.fixture
def media_worker(settings, transactional_db):
    """A real RQ worker that reads uploads from this test's MEDIA_ROOT (the `media` fixture's)."""
    process = start_worker(MEDIA_ROOT=str(settings.MEDIA_ROOT))
    yield process
    process.stop()


def start_on(client, dataset):
    response = client.get(f"{NEW}?dataset=csv:{dataset.pk}")
    assert response["Location"] == f"{NEW}?step=dataset"


def next_untouched(client, step):
    """Opens `step` and presses Next (or Save and launch on Review) with every field as the page set it."""
    page = client.get(f"{NEW}?step={step}")
    assert page.status_code == 200
    action = "launch" if step == "review" else "next"
    return client.post(NEW, {**defaults(page.content.decode()), "step": step, "action": action})


@pytest.mark.system
def test_it_runs_penguins_to_completion_on_the_wizards_defaults(media_worker, alice, owner):
    dataset = upload(alice, penguins_like(), "penguins.csv")
    start_on(alice, dataset)
    for step in STEPS:
        response = next_untouched(alice, step)
        assert response.status_code == 302, (step, response.content.decode()[-3000:])
    response = next_untouched(alice, "review")
    run = Run.objects.get(owner=owner)
    assert response["Location"] == run.get_absolute_url()
    spec = run.spec
    assert (spec["target"], spec["task"]) == ("species", "classification")
    assert spec["preprocessing"] == [
        {"name": "simple_imputer", "params": {"strategy": "median"}},
        {"name": "categorical_imputer", "params": {"strategy": "most_frequent"}},
        {"name": "one_hot_encoder", "params": {}}, {"name": "standard_scaler", "params": {}}]
    assert "drop_columns" not in spec
    assert [m["estimator"] for m in spec["models"]] == ["LogisticRegression"]
    assert run.experiment.name == "species from penguins.csv"
    wait_for(lambda: Run.objects.get(pk=run.pk).is_terminal, timeout=120, message="the run to end")
    run.refresh_from_db()
    assert run.status == Run.Status.COMPLETED, run.error_message
    assert run.best_score is not None and run.best_score > 0.8


def test_it_proposes_leaving_out_the_index_column_of_diamonds(alice, owner):
    dataset = upload(alice, diamonds_like(), "diamonds.csv")
    start_on(alice, dataset)
    for step in ("dataset", "target"):
        assert next_untouched(alice, step).status_code == 302
    page = alice.get(f"{NEW}?step=preprocessing").content.decode()
    assert "leave out\n      <code>rownames</code>, which the profile flags" in page
    assert defaults(page)["drop_columns"] == ["rownames"]
    assert "rownames — unique in every row and in order: a row index or ID, not a feature" in page
    assert next_untouched(alice, "preprocessing").status_code == 302
    draft = alice.session["wizard:new"]["spec"]
    assert draft["drop_columns"] == ["rownames"] and (draft["target"], draft["task"]) == ("price", "regression")
    for step in ("models", "cv", "runner"):
        assert next_untouched(alice, step).status_code == 302
    review = alice.get(f"{NEW}?step=review").content.decode()
    assert "<dt>Left out</dt>\n    <dd>rownames</dd>" in review


# What the data scientist chose on Titanic (issue 30): nothing filled, "None in my data", nothing left out.
TITANIC_AS_TRIED = {"imputer": "", "cat_imputer": "", "encode": "none", "n_branches": "1"}


def test_it_lists_every_titanic_problem_before_launch_in_its_own_words(alice, owner):
    dataset = upload(alice, titanic_like(), "titanic.csv")
    start_on(alice, dataset)
    for step in ("dataset", "target"):
        assert next_untouched(alice, step).status_code == 302
    assert post(alice, "preprocessing", TITANIC_AS_TRIED).status_code == 302
    for step in ("models", "cv", "runner"):
        assert next_untouched(alice, step).status_code == 302
    review = alice.get(f"{NEW}?step=review").content.decode()
    problems = review[review.index('<ul class="review-problems">'):]
    problems = problems[: problems.index("</ul>")]
    assert problems.count("<li>") == 6
    for column in ("Name", "Sex", "Ticket", "Cabin", "Embarked"):
        assert problems.count(f"Column “{column}” holds text") == 1, column
    assert "Column “Age” has 40 missing values, and the chosen models cannot take gaps" in problems
    assert ("Column “Name” holds text (for example “Passenger 0, Mr. Someone”), which no model can take as it is: "
            "under “Text and categorical columns” choose “One-hot encode them” or “Leave text columns out”, or tick "
            "it under “Leave out these columns”. The profile flags it (unique in every row: a name or an ID, not a "
            "feature): leaving it out is likely best.") in problems
    assert problems.count('<a href="?step=preprocessing">Preprocessing</a>') == 6
    assert "Fix these 6 problems before saving" in review
    for spec_word in ("one_hot_encoder", "simple_imputer", "preprocessing.", "re-run"):
        assert spec_word not in review, spec_word
    response = post(alice, "review", {"name": "Titanic as tried"}, action="launch")
    assert response.status_code == 400 and not Run.objects.exists() and not Experiment.objects.exists()


def test_it_launches_titanic_once_the_proposals_are_kept(alice, owner):
    dataset = upload(alice, titanic_like(), "titanic.csv")
    start_on(alice, dataset)
    for step in STEPS:
        assert next_untouched(alice, step).status_code == 302, step
    spec = alice.session["wizard:new"]["spec"]
    assert spec["drop_columns"] == ["PassengerId", "Name", "Ticket", "Cabin"]
    assert (spec["target"], spec["task"]) == ("Survived", "classification")
    review = alice.get(f"{NEW}?step=review").content.decode()
    assert "review-problems" not in review and "Estimated duration" in review


def test_it_refuses_another_users_dataset_in_the_wizard(alice, outsider):
    dataset = upload(alice, diamonds_like(), "diamonds.csv")
    mallory = Client()
    mallory.force_login(outsider)
    assert mallory.get(f"{NEW}?dataset=csv:{dataset.pk}").status_code == 404
    response = post(mallory, "dataset", {"source": f"csv:{dataset.pk}"})
    assert response.status_code == 400
    assert f"Select a valid choice. csv:{dataset.pk} is not one of the available choices." in (
        response.context["form"].errors["source"])


def test_it_puts_a_bad_column_choice_on_its_field(alice, owner):
    dataset = upload(alice, diamonds_like(), "diamonds.csv")
    start_on(alice, dataset)
    for step in ("dataset", "target"):
        assert next_untouched(alice, step).status_code == 302
    response = post(alice, "preprocessing", {**TITANIC_AS_TRIED, "drop_columns": ["price"]})
    assert response.status_code == 400
    assert response.context["form"].errors["drop_columns"] == [
        "Select a valid choice. price is not one of the available choices."]
