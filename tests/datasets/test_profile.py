"""The data profile on the dataset page: per-column statistics with a histogram or the top values, flags for
columns that are no use as features, and the suggested target and task; only the owner sees it."""

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from datasets import profiling
from datasets.models import Dataset
from tests.datasets_like import diamonds_like, penguins_like, titanic_like
from tests.datasets.test_pages import alice, media  # noqa: F401 (fixtures: a logged-in owner, a private MEDIA_ROOT)


def upload(client, text, name):
    response = client.post("/datasets/upload/", {"file": SimpleUploadedFile(name, text.encode())})
    assert response.status_code == 302, response.content.decode()[-1000:]
    return Dataset.objects.get(name=name)


def by_name(dataset):
    return {c["name"]: c for c in dataset.columns}


def test_it_flags_the_index_column_of_diamonds_and_suggests_the_price(alice):
    dataset = upload(alice, diamonds_like(), "diamonds.csv")
    columns = by_name(dataset)
    assert columns["rownames"]["flags"] == ["id_like"]
    assert all(not c["flags"] for name, c in columns.items() if name != "rownames")
    page = alice.get(f"/datasets/{dataset.pk}/").content.decode()
    assert 'Target: <strong>price</strong>, a <strong>regression</strong> task.' in page
    assert "<code>rownames</code>: unique in every row and in order: a row index or ID, not a feature" in page
    assert '<tr class="flagged" data-column="rownames">' in page


def test_it_gives_numbers_their_statistics_and_histogram(alice):
    dataset = upload(alice, penguins_like(), "penguins.csv")
    mass = by_name(dataset)["body_mass_g"]
    assert mass["missing"] == 2 and mass["kind"] == "numeric"
    stats = mass["stats"]
    assert stats["min"] <= stats["mean"] <= stats["max"]
    assert sum(stats["histogram"]) == 342 and len(stats["histogram"]) == profiling.HISTOGRAM_BINS
    page = alice.get(f"/datasets/{dataset.pk}/").content.decode()
    assert f'min {stats["min"]:g} · mean' in page
    assert 'aria-label="Histogram of body_mass_g: ' + ", ".join(map(str, stats["histogram"])) in page
    assert 'Target: <strong>species</strong>, a <strong>classification</strong> task.' in page


def test_it_gives_categoricals_their_top_values(alice):
    dataset = upload(alice, penguins_like(), "penguins.csv")
    island = by_name(dataset)["island"]
    top = island["stats"]["top"]
    assert [v for v, _ in top] == sorted({v for v, _ in top}, key=lambda v: -dict(top)[v])
    assert sum(n for _, n in top) == 344 and island["flags"] == []
    assert f'<span class="value">{top[0][0]}</span> <span class="muted">{top[0][1]}</span>' in alice.get(
        f"/datasets/{dataset.pk}/").content.decode()


def test_it_flags_names_tickets_and_a_mostly_missing_cabin(alice):
    columns = by_name(upload(alice, titanic_like(), "titanic.csv"))
    assert columns["PassengerId"]["flags"] == ["id_like"]
    assert columns["Name"]["flags"] == ["id_like"]
    assert columns["Ticket"]["flags"] == ["high_cardinality"]
    assert "mostly_missing" in columns["Cabin"]["flags"]
    assert columns["Sex"]["flags"] == columns["Age"]["flags"] == columns["Embarked"]["flags"] == []
    assert profiling.suggest(list(columns.values()), 200) == ("Survived", "classification")


def test_it_flags_constant_and_high_cardinality_columns():
    import pandas as pd

    frame = pd.DataFrame({"same": ["x"] * 300, "word": [f"w{i % 150}" for i in range(300)], "y": [0, 1] * 150})
    columns = {c["name"]: c for c in profiling.profile(frame)}
    assert columns["same"]["flags"] == ["constant"]
    assert columns["word"]["flags"] == ["high_cardinality"]
    assert profiling.flag_notes(columns["word"]) == ["150 different text values: too many to one-hot encode usefully"]


def test_it_profiles_an_upload_stored_before_the_statistics(alice):
    dataset = upload(alice, diamonds_like(), "diamonds.csv")
    Dataset.objects.filter(pk=dataset.pk).update(columns=[{k: c[k] for k in ("name", "dtype", "kind", "missing",
                                                                            "distinct")} for c in dataset.columns])
    page = alice.get(f"/datasets/{dataset.pk}/").content.decode()
    assert "<code>rownames</code>: unique in every row" in page


def test_it_shows_the_profile_only_to_the_owner(alice, outsider):
    dataset = upload(alice, diamonds_like(), "diamonds.csv")
    mallory = Client()
    mallory.force_login(outsider)
    assert mallory.get(f"/datasets/{dataset.pk}/").status_code == 404
