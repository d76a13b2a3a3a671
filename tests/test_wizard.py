"""The experiment wizard: every step, its field errors, back and reload, new/edit/clone/from-run, save and
launch; and the experiments list and detail pages, for the owner and an outsider."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from engine import catalog
from datasets.models import Dataset
from experiments.models import Experiment
from runs.models import FoldMetric, Run

NEW = "/experiments/new/"
IRIS_STEPS = [
    ("dataset", {"source": "builtin:iris"}),
    ("target", {"task": "classification"}),
    ("preprocessing", {"imputer": "", "encode": "none", "n_branches": "2", "b0_name": "standard",
                       "b0_scaler": "standard_scaler", "b1_name": "minmax", "b1_scaler": "minmax_scaler"}),
    ("models", {"use_LogisticRegression": "on", "LogisticRegression__C": "0.1, 1", "LogisticRegression__max_iter": "500",
                "use_KNeighborsClassifier": "on", "KNeighborsClassifier__n_neighbors": "3..7 step 2"}),
    ("cv", {"kind": "stratified_kfold", "folds": "3", "shuffle": "on", "seed": "1", "metric": "accuracy"}),
    ("runner", {"runner": "cv"}),
]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def alice(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def mallory(outsider):
    client = Client()
    client.force_login(outsider)
    return client


def post(client, step, data, action="next", url=NEW):
    return client.post(url, {"step": step, "action": action, **data})


def walk(client, steps, url=NEW):
    for step, data in steps:
        response = post(client, step, data, url=url)
        assert response.status_code == 302, (step, response.context["form"].errors)
    return response


def upload(client, text, name="data.csv"):
    response = client.post("/datasets/upload/", {"file": SimpleUploadedFile(name, text.encode())})
    assert response.status_code == 302, response.content.decode()[-2000:]
    return Dataset.objects.order_by("-id").first()


def test_it_renders_every_step(alice):
    for step in ("dataset", "target", "preprocessing", "models", "cv", "runner", "review"):
        response = alice.get(f"{NEW}?step={step}")
        assert response.status_code == 200, step
        assert f'<input type="hidden" name="step" value="{step}">' in response.content.decode()


def test_it_designs_saves_and_shows_an_experiment(alice, owner):
    assert walk(alice, IRIS_STEPS)["Location"] == f"{NEW}?step=review"
    review = alice.get(f"{NEW}?step=review").content.decode()
    assert "30 + 1 refit <span class=\"muted\">(2 branches × 5 variants × 3 folds, then the best variant refitted" in review
    assert "Estimated duration" in review and "from the catalog&#x27;s cost model for 150 rows × 4 columns" in review
    assert "standard: Standard scaling" in review and "n_neighbors ∈ {3, 5, 7}" in review
    response = post(alice, "review", {"name": "Iris branches", "description": "two scalers"}, action="save")
    experiment = Experiment.objects.get(owner=owner)
    assert response["Location"] == f"/experiments/{experiment.pk}/"
    spec = experiment.spec
    assert [b["name"] for b in spec["branches"]] == ["standard", "minmax"]
    assert spec["models"][1]["params"] == {"n_neighbors": [3, 5, 7]}
    assert spec["cv"] == {"kind": "stratified_kfold", "folds": 3, "shuffle": True, "seed": 1}
    detail = alice.get(response["Location"]).content.decode()
    assert "Iris branches" in detail and "Stratified k-fold, 3 folds, shuffled with seed 1" in detail
    assert "No runs yet" in detail
    listing = alice.get("/experiments/").content.decode()
    assert "Built-in: iris" in listing and "LogisticRegression, KNeighborsClassifier" in listing
    assert '<td class="num" data-label="Fits per run">30</td>' in listing
    assert "wizard:new" not in alice.session  # the draft is gone once saved


def test_it_puts_validator_errors_on_their_fields(alice):
    walk(alice, IRIS_STEPS[:3])
    response = post(alice, "models", {"use_LogisticRegression": "on", "LogisticRegression__C": "0.1, 5000000"})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert errors["LogisticRegression__C"] == ["Must be between 0 and 1000000."]
    response = post(alice, "models", {"use_LogisticRegression": "on", "LogisticRegression__solver": "bogus"})
    assert "LogisticRegression__solver" in response.context["form"].errors
    response = post(alice, "models", {"use_SVC": "on", "SVC__C": "1..1000"})
    assert response.context["form"].errors["SVC__C"] == ["That range gives 1,000 values; at most 100 are allowed."]
    response = post(alice, "models", {})
    assert response.context["form"].non_field_errors() == ["Choose at least one model."]
    response = post(alice, "cv", {"kind": "stratified_kfold", "folds": "1", "metric": "accuracy"})
    assert "folds" in response.context["form"].errors
    response = post(alice, "dataset", {"source": "synthetic:classification", "n_samples": "5", "n_features": "3"})
    assert response.context["form"].errors["n_samples"] == ["Must be between 20 and 2000000."]


def test_it_names_the_branch_with_a_bad_step(alice):
    walk(alice, IRIS_STEPS[:2])
    response = post(alice, "preprocessing", {"encode": "none", "n_branches": "2", "b0_name": "a", "b0_degree": "9",
                                             "b1_name": "a"})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert errors["b0_degree"] == ["Must be a whole number between 1 and 5."]
    assert errors["b1_name"] == ["Branch names must be unique."]


def test_it_adds_a_branch_row_without_javascript(alice):
    response = post(alice, "preprocessing", {"encode": "none", "n_branches": "2", "b0_name": "x"}, action="add_branch")
    page = alice.get(response["Location"]).content.decode()
    assert 'name="b2_name"' in page and 'value="x"' in page


def test_it_keeps_entries_when_going_back_and_after_a_reload(alice):
    walk(alice, IRIS_STEPS[:3])
    # Back from a half-filled, invalid step keeps what was typed.
    response = post(alice, "models", {"use_SVC": "on", "SVC__C": "1..x"}, action="back")
    assert response["Location"] == f"{NEW}?step=preprocessing"
    page = alice.get(response["Location"]).content.decode()
    assert 'value="standard"' in page and 'value="minmax"' in page  # the branches entered before
    models_page = alice.get(f"{NEW}?step=models").content.decode()
    assert 'value="1..x"' in models_page and "A range is written" in models_page
    # A new client on the same session (a reload, a new tab) sees the same draft.
    again = Client()
    again.cookies = alice.cookies
    assert 'value="minmax"' in again.get(f"{NEW}?step=preprocessing").content.decode()


def test_it_guesses_the_task_and_refuses_bad_targets(alice, owner):
    rows = ["id,city,const,empty,few,price,label"]
    for i in range(3000):
        rows.append(f"{i},{'PLX'[i % 3]}{i},7,,{'r' if i == 0 else 'c'},{i * 1.5},{i % 2}")
    dataset = upload(alice, "\n".join(rows) + "\n")
    walk(alice, [("dataset", {"source": f"csv:{dataset.pk}"})])
    page = alice.get(f"{NEW}?step=target").content.decode()
    assert "label → classification" in page and "price → regression" in page and "city → classification" in page

    def refusal(target, task="classification"):
        response = post(alice, "target", {"target": target, "task": task})
        assert response.status_code == 400
        return response.context["form"].errors["target"][0]

    assert refusal("const") == "Column 'const' is constant: every row has the same value, so there is nothing to predict."
    assert refusal("empty") == "Column 'empty' is empty: it has no values to learn."
    assert refusal("few").startswith("Column 'few' has a class with only 1 rows, fewer than the 5 folds.")
    assert refusal("city").startswith("Column 'city' has 3,000 different values: too many classes to learn")
    assert refusal("city", "regression").startswith("Column 'city' holds text; a regression target must hold numbers")
    assert post(alice, "target", {"target": "label", "task": "classification"}).status_code == 302
    # The same facts, live as the column is picked (htmx).
    facts = alice.get(f"/experiments/new/target-check/?dataset={dataset.pk}&target=const&task=classification&folds=5")
    assert "Guessed task: <strong>classification</strong>" in facts.content.decode()
    assert "is constant" in facts.content.decode()
    assert "too many classes" not in alice.get(
        f"/experiments/new/target-check/?dataset={dataset.pk}&target=label&task=classification").content.decode()


def test_it_designs_on_an_upload_and_launches(alice, owner):
    text = "a,b,city,y\n" + "".join(f"{i},{i % 7},{'PL'[i % 2]},{i % 2}\n" for i in range(60))
    dataset = upload(alice, text)
    walk(alice, [("dataset", {"source": f"csv:{dataset.pk}"}), ("target", {"target": "y", "task": "classification"}),
                 ("preprocessing", {"imputer": "mean", "encode": "encode", "n_branches": "1"}),
                 ("models", {"use_LogisticRegression": "on"}), ("cv", {"kind": "kfold", "folds": "3", "metric": "f1_macro"}),
                 ("runner", {"runner": "cv"})])
    response = post(alice, "review", {"name": "On upload"}, action="launch")
    run = Run.objects.get(owner=owner)
    assert response["Location"] == run.get_absolute_url()
    assert run.experiment.name == "On upload" and run.spec["dataset"]["id"] == dataset.pk
    assert run.spec["preprocessing"] == [{"name": "simple_imputer", "params": {"strategy": "mean"}},
                                         {"name": "one_hot_encoder", "params": {}}]


def test_it_estimates_from_earlier_runs_on_the_same_data(alice, owner, outsider, experiment, settings, monkeypatch):
    from experiments import describe
    from experiments.models import validate_spec_for
    from runs import formatting

    monkeypatch.setitem(settings.RUNWATCH, "N_JOBS_DEFAULT", 1)
    iris = {"kind": "builtin", "name": "iris"}
    spec = {**experiment.spec, "dataset": iris, "models": [{"estimator": "LogisticRegression", "label": "LogisticRegression",
                                                                "params": {"C": [1.0]}}]}
    # The owner's earlier run fitted LogisticRegression at 2 s a fold; an outsider's at 50 s: not the owner's.
    for who, seconds in ((owner, 2.0), (outsider, 50.0)):
        old = Run.objects.create(owner=who, name="old", spec=spec, status=Run.Status.COMPLETED, total_fits=3,
                                 summary={"rows": 150})
        FoldMetric.objects.bulk_create([FoldMetric(run=old, variant=1, fold=f, metric=m, value=0.9, fit_time=seconds)
                                        for f in (1, 2, 3) for m in ("accuracy", "f1_macro")])
    walk(alice, IRIS_STEPS)
    review = alice.get(f"{NEW}?step=review").content.decode()
    assert "from your earlier runs on this data, the catalog&#x27;s cost model for models they did not fit" in review
    new_spec = validate_spec_for(owner, alice.session["wizard:new"]["spec"])
    seconds, low, high, _ = describe.estimate(new_spec, {"LogisticRegression": 2.0}, (150, 4), 1)
    assert f"<strong>{formatting.estimate(seconds, low, high)}</strong>" in review
    # 2 branches x 2 LogisticRegression variants x 3 folds at 2 s (max_iter 500 is only a cap: no more work):
    # 24 s, and the refit; the KNN fits cost a fraction of a second. Without the history, a second or two.
    assert 24 < seconds < 30 and low < seconds < high
    assert describe.estimate(new_spec, {}, (150, 4), 1)[0] < 5


def test_it_edits_an_experiment(alice, experiment):
    url = f"/experiments/{experiment.pk}/edit/"
    page = alice.get(url).content.decode()
    assert 'value="builtin:iris" checked' in page
    walk(alice, [("dataset", {"source": "builtin:wine"})], url=url)
    assert post(alice, "target", {"task": "classification"}, url=url).status_code == 302
    models = alice.get(f"{url}?step=models").content.decode()
    assert 'id="id_use_LogisticRegression"' in models  # task unchanged: the models stay chosen
    assert post(alice, "review", {"name": "Wine now"}, action="save", url=url).status_code == 302
    experiment.refresh_from_db()
    assert experiment.name == "Wine now" and experiment.spec["dataset"] == {"kind": "builtin", "name": "wine"}
    assert experiment.spec["models"][0]["params"]["C"] == [0.1, 1.0]


def test_it_clones_an_experiment_and_prefills_from_a_run(alice, owner, experiment):
    response = alice.get(f"/experiments/{experiment.pk}/clone/")
    assert response["Location"] == f"{NEW}?step=dataset"
    assert post(alice, "review", {"name": "Copy of Iris baseline"}, action="save").status_code == 302
    assert Experiment.objects.filter(owner=owner).count() == 2
    run = Run.objects.create(owner=owner, experiment=experiment, name="Iris run",
                             spec={**experiment.spec, "dataset": {"kind": "builtin", "name": "wine"}})
    assert alice.get(f"{NEW}?from_run={run.pk}")["Location"] == f"{NEW}?step=dataset"
    review = alice.get(f"{NEW}?step=review").content.decode()
    assert "Built-in: wine" in review and 'value="Iris run (edited)"' in review


def test_it_hides_experiments_and_runs_from_others(mallory, owner, experiment):
    run = Run.objects.create(owner=owner, experiment=experiment, name="r", spec=experiment.spec)
    for url in (f"/experiments/{experiment.pk}/", f"/experiments/{experiment.pk}/edit/",
                f"/experiments/{experiment.pk}/clone/", f"/experiments/{experiment.pk}/delete/",
                f"{NEW}?from_run={run.pk}", f"{NEW}?from_run=x"):
        assert mallory.get(url).status_code == 404, url
    assert mallory.post(f"/experiments/{experiment.pk}/launch/").status_code == 404
    dataset = Dataset.objects.create(owner=owner, name="hers.csv", columns=[{"name": "y", "kind": "numeric"}])
    assert mallory.get(f"/experiments/new/target-check/?dataset={dataset.pk}&target=y").status_code == 404
    assert mallory.post(f"/experiments/{experiment.pk}/delete/").status_code == 404
    assert "Iris baseline" not in mallory.get("/experiments/").content.decode()
    assert Experiment.objects.filter(pk=experiment.pk).exists() and Run.objects.count() == 1


def test_it_launches_lists_and_deletes(alice, owner, experiment):
    response = alice.post(f"/experiments/{experiment.pk}/launch/")
    run = Run.objects.get()
    assert response["Location"] == run.get_absolute_url()
    Run.objects.filter(pk=run.pk).update(status=Run.Status.COMPLETED, best_score=0.9667)
    listing = alice.get("/experiments/").content.decode()
    assert f"#{run.pk}</a>" in listing and "badge-completed" in listing and "best 0.9667" in listing
    detail = alice.get(f"/experiments/{experiment.pk}/").content.decode()
    assert "0.9667" in detail
    assert "stay, with their results" in alice.get(f"/experiments/{experiment.pk}/delete/").content.decode()
    assert alice.post(f"/experiments/{experiment.pk}/delete/")["Location"] == "/experiments/"
    assert not Experiment.objects.exists()
    assert Run.objects.get().best_score == 0.9667


def test_it_shows_an_empty_experiments_list(alice):
    assert "No experiments yet." in alice.get("/experiments/").content.decode()


def test_it_marks_a_model_whose_library_is_missing(alice, monkeypatch):
    monkeypatch.setitem(catalog.ESTIMATORS, "NotInstalledBoost",
                        ("not_an_installed_library.boost", "NotInstalledBoost", {"classification"}, False))
    page = alice.get(f"{NEW}?step=models").content.decode()
    assert "NotInstalledBoost (install required)" in page
    i = page.index('id="id_use_NotInstalledBoost"')
    assert " disabled" in page[page.rindex("<input", 0, i):page.index(">", i)]


def test_it_signs_up_only_when_enabled(client, settings, db):
    assert client.get("/signup/").status_code == 404
    assert "Sign up" not in client.get("/login/").content.decode()
    settings.RUNWATCH = {**settings.RUNWATCH, "SIGNUP_ENABLED": True}
    assert "Sign up" in client.get("/login/").content.decode()
    response = client.post("/signup/", {"username": "newbie", "password1": "a-long-pass-phrase-9",
                                        "password2": "a-long-pass-phrase-9"})
    assert response["Location"] == "/datasets/"
    assert "No datasets yet" in client.get("/datasets/").content.decode()


def test_it_changes_a_password(alice, owner):
    assert alice.get("/password/").status_code == 200
    response = alice.post("/password/", {"old_password": "alice-password-1", "new_password1": "n3w-secret-phrase",
                                         "new_password2": "n3w-secret-phrase"})
    assert response["Location"] == "/password/done/"
    owner.refresh_from_db()
    assert owner.check_password("n3w-secret-phrase")


def test_it_marks_the_current_section_in_the_nav(alice):
    page = alice.get("/datasets/").content.decode()
    assert '<a href="/datasets/" aria-current="page">Datasets</a>' in page
    assert '<a href="/experiments/">Experiments</a>' in page


def test_it_sends_review_errors_back_to_their_step(alice):
    walk(alice, IRIS_STEPS[:5])
    assert post(alice, "runner", {"runner": "training", "epochs": "5", "patience": "2",
                                  "validation_fraction": "0.2"}).status_code == 302
    review = alice.get(f"{NEW}?step=review").content.decode()
    assert '<a href="?step=models">Models</a>: Epoch training needs an estimator with partial_fit' in review
    response = post(alice, "review", {"name": "Will not save"}, action="save")
    assert response.status_code == 400 and not Experiment.objects.exists()


def test_it_lets_the_user_leave_text_columns_out():
    """Text columns are encoded or dropped, the user chooses: both round-trip through the draft."""
    from experiments import wizard

    for choice, step in (("encode", "one_hot_encoder"), ("drop", "drop_text_columns")):
        preprocessing, branches = wizard.join_preprocessing("", choice, [{"scaler": "standard_scaler"}])
        assert [s["name"] for s in preprocessing] == [step, "standard_scaler"] and branches == []
        assert wizard.split_preprocessing({"preprocessing": preprocessing})[1] == choice


def test_it_chooses_a_stop_rule_at_the_validation_step(alice, owner):
    walk(alice, IRIS_STEPS[:4])
    cv = dict(IRIS_STEPS[4][1])
    page = alice.get(f"{NEW}?step=cv").content.decode()
    assert 'name="stop_rule"' in page and "Successive halving" in page
    for data, field, message in (
        ({"stop_rule": "median", "stop_after_folds": "4"}, "stop_after_folds", "Must be a whole number of folds from 1 to 3"),
        ({"stop_rule": "successive_halving", "stop_factor": "1"}, "stop_factor", "Must be a whole number from 2"),
        ({"stop_rule": "target", "stop_value": "2"}, "stop_value", "accuracy runs from 0 to 1"),
        ({"stop_rule": "target"}, "stop_value", "Give the score"),
    ):
        response = post(alice, "cv", {**cv, **data})
        assert response.status_code == 400, data
        assert response.context["form"].errors[field][0].startswith(message), response.context["form"].errors
    walk(alice, [("cv", {**cv, "stop_rule": "median", "stop_after_folds": "2"}), IRIS_STEPS[5]])
    review = alice.get(f"{NEW}?step=review").content.decode()
    assert "Median from fold 2: a variant whose running mean is below the median" in review
    back = alice.get(f"{NEW}?step=cv").content.decode()  # the choice is kept when going back
    assert '<option value="median" selected>' in back
    post(alice, "review", {"name": "Iris pruned", "description": ""}, action="save")
    assert Experiment.objects.get(owner=owner).spec["stop_rule"] == {"kind": "median", "after_folds": 2}
