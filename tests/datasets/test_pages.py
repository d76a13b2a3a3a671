"""The datasets pages: list, upload (every bad file refused with its message, leaving no row and no file),
preview, delete; each user sees only their own."""

import codecs
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import MemoryFileUploadHandler, TemporaryFileUploadHandler
from django.test import Client

from datasets.models import Dataset
from experiments.models import Experiment
from runs.models import Run
from tests.api.conftest import client_for

GOOD = "a,b,city,y\n" + "".join(f"{i},{i * 2},{'PL'[i % 2]},{i % 2}\n" for i in range(40))


def stored_files():
    root = Path(settings.MEDIA_ROOT) / "datasets"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def upload(client, content, name="data.csv"):
    return client.post("/datasets/upload/", {"file": SimpleUploadedFile(name, content)})


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def alice(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def dataset(alice, owner):
    response = upload(alice, GOOD.encode(), "cities.csv")
    assert response.status_code == 302
    return Dataset.objects.get(owner=owner, name="cities.csv")


def test_it_shows_an_empty_state(alice):
    body = alice.get("/datasets/").content.decode()
    assert "No datasets yet: upload a CSV below, or start from a built-in or synthetic dataset." in body
    assert "at most 50 MB" in body  # the size limit is on the page
    assert "?dataset=builtin:iris" in body and 'value="synthetic:regression"' in body


def test_it_requires_login(client):
    for url in ("/datasets/", "/datasets/upload/", "/datasets/1/", "/datasets/1/delete/"):
        assert client.get(url)["Location"].startswith("/login/")


def test_it_uploads_and_previews_a_csv(alice, dataset):
    assert (dataset.n_rows, dataset.n_columns) == (40, 4)
    assert dataset.file and Path(dataset.file.path).exists()
    by_name = {c["name"]: c for c in dataset.columns}
    assert by_name["a"]["kind"] == "numeric" and by_name["city"]["kind"] == "categorical"
    assert by_name["city"]["distinct"] == 2 and by_name["a"]["missing"] == 0
    body = alice.get(f"/datasets/{dataset.pk}/").content.decode()
    assert "First 20 rows" in body and "<tr><td>19</td>" in body and "<tr><td>20</td>" not in body
    assert "categorical" in body
    listing = alice.get("/datasets/").content.decode()
    assert "cities.csv" in listing and "40 × 4" in listing


def test_it_counts_missing_values_and_detects_text(alice, owner):
    rows = "id,note,y\n" + "".join(f"{i},{'' if i % 5 == 0 else f'word {i}'},{i % 2}\n" for i in range(600))
    assert upload(alice, rows.encode()).status_code == 302
    columns = {c["name"]: c for c in Dataset.objects.get(owner=owner).columns}
    assert columns["note"]["kind"] == "text" and columns["note"]["missing"] == 120


def test_it_escapes_html_and_keeps_formulas_as_data(alice, owner):
    content = '<b>x</b>,y\n"=HYPERLINK(""http://evil"")",1\n<script>alert(1)</script>,0\n+1+2,1\n@SUM(A1),0\n'
    response = upload(alice, content.encode())
    assert response.status_code == 302
    body = alice.get(response["Location"]).content.decode()
    assert "<script>alert(1)" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "&lt;b&gt;x&lt;/b&gt;" in body
    assert "=HYPERLINK(&quot;http://evil&quot;)" in body  # the cell's text, not evaluated or altered


BAD_FILES = [
    ("not CSV: JSON", b'{"a": 1, "b": [1, 2]}', "This is JSON, not CSV."),
    ("not CSV: binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "This is not a CSV file: it holds binary data."),
    ("empty", b"", "The file is empty (0 bytes)."),
    ("blank lines", b"\n\n  \n", "The file has no columns"),
    ("header only", b"a,b,y\n", "The file has column names but no rows of data."),
    ("duplicate columns", b"a,b,a\n1,2,3\n4,5,6\n7,8,9\n1,1,1\n",
     "Column names must be unique; the header repeats 'a'."),
    ("ragged row", ("a,b,c,y\n" + "1,2,3,4\n" * 55 + "1,2,3,4,5\n").encode(),
     "Row 57 has 5 fields, expected 4 like the header."),
    ("too few rows", b"a,y\n1,0\n2,1\n3,0\n", "The file has 3 rows of data, too few for any cross-validation"),
    ("one column", b"y\n1\n2\n3\n4\n5\n", "The file has one column"),
    ("not UTF-8 or Latin-1", b"a,y\n\x81\x82,1\n", "The file is neither UTF-8 nor Latin-1 text"),
    ("bad UTF-16", codecs.BOM_UTF16_LE + b"a\x00,", "not valid UTF-16"),
    ("not really UTF-16", b"\xff\xfe\x00bad", "starts like UTF-16 text but does not decode to lines of values"),
    ("unclosed quote", b'a,b,y\n1,2,3\n"4,5,6\n', "This is not a readable CSV file:"),
]


# The set below is refused under these limits; "too many columns" and "over the limit" are just past them.
LIMIT_MB = 1
WIDE = ",".join(f"c{i}" for i in range(1001)) + "\n" + ("1," * 1000 + "0\n") * 5
BAD_FILES += [
    ("one byte repeated", b"\x01" * 4096, "This is not a CSV file: it holds binary data."),
    ("one letter repeated", b"a" * 4096, "The file has column names but no rows of data."),
    ("too many columns", WIDE.encode(), "The file has 1,001 columns; the limit is 1,000."),
    ("over the limit", b"a,y\n" + b"1,0\n" * (3 * 1024 * 1024 // 8 - 1), "The file is 1.5 MB; the limit is 1 MB."),
]


def refusals(client, api, staff_client, owner, content):
    """The `file` errors of the upload page, the API and the admin's add form for the same file, and the page."""
    page = upload(client, content)
    assert page.status_code == 400
    answer = api.post("/api/v1/datasets/", {"file": SimpleUploadedFile("data.csv", content)}, format="multipart")
    assert answer.status_code == 400, answer.content
    admin = staff_client.post("/admin/datasets/dataset/add/", {
        "owner": owner.pk, "name": "x", "kind": "csv", "params": "{}", "file": SimpleUploadedFile("data.csv", content)})
    assert admin.status_code == 200
    errors = (page.context["form"].errors["file"], answer.json()["file"], admin.context["adminform"].form.errors["file"])
    return errors, page.content.decode().replace("&#x27;", "'")


@pytest.mark.parametrize("label,content,message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_it_refuses_a_bad_file_the_same_way_everywhere_leaving_nothing_behind(alice, owner, staff, settings, tmp_path,
                                                                              label, content, message):
    settings.RUNWATCH = {**settings.RUNWATCH, "DATASET_MAX_UPLOAD_MB": LIMIT_MB}
    settings.FILE_UPLOAD_TEMP_DIR = tmp_path / "uploads"
    settings.FILE_UPLOAD_TEMP_DIR.mkdir()
    staff_client = Client()
    staff_client.force_login(staff)

    (page, api, admin), shown = refusals(alice, client_for(owner), staff_client, owner, content)

    assert len(page) == 1 and message in page[0]
    assert api == admin == page  # the same sentence, word for word, from every door
    assert page[0] in shown
    assert not Dataset.objects.exists()
    assert stored_files() == [] and list(settings.FILE_UPLOAD_TEMP_DIR.iterdir()) == []


@pytest.mark.parametrize("kept_in", ["memory", "a temporary file"])
def test_it_stops_keeping_an_upload_once_it_passes_the_limit(alice, owner, settings, tmp_path, monkeypatch, kept_in):
    settings.RUNWATCH = {**settings.RUNWATCH, "DATASET_MAX_UPLOAD_MB": LIMIT_MB}
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024 if kept_in == "memory" else 0
    settings.FILE_UPLOAD_TEMP_DIR = tmp_path / "uploads"
    settings.FILE_UPLOAD_TEMP_DIR.mkdir()
    kept = []
    # Count what Django's own handlers are given to store; ours call them only below the limit. (The memory
    # handler, when not activated by a small request, passes every chunk on without storing it.)
    for handler in (MemoryFileUploadHandler, TemporaryFileUploadHandler):
        def counting(self, raw_data, start, store=handler.receive_data_chunk):
            if getattr(self, "activated", True):
                kept.append(len(raw_data))
            return store(self, raw_data, start)
        monkeypatch.setattr(handler, "receive_data_chunk", counting)
    content = b"a,y\n" + b"1,0\n" * (6 * 1024 * 1024 // 4)  # 6 MB

    page = upload(alice, content)
    answer = client_for(owner).post("/api/v1/datasets/", {"file": SimpleUploadedFile("big.csv", content)},
                                    format="multipart")

    message = "The file is 6.0 MB; the limit is 1 MB."
    assert page.status_code == 400 and page.context["form"].errors["file"] == [message]
    assert answer.status_code == 400 and answer.json() == {"file": [message]}
    # Each of the two uploads kept at most the limit (in 64 KB chunks), not the 6 MB sent.
    assert 0 < sum(kept) <= 2 * LIMIT_MB * 1024 * 1024
    assert list(settings.FILE_UPLOAD_TEMP_DIR.iterdir()) == []
    assert not Dataset.objects.exists() and stored_files() == []


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1", "utf-8-sig"])
def test_it_decodes_utf16_and_latin1(alice, owner, encoding):
    text = "ville,prix,y\n" + "".join(f"Orléans,{i},{i % 2}\n" for i in range(10))
    assert upload(alice, text.encode(encoding)).status_code == 302
    dataset = Dataset.objects.get(owner=owner)
    assert [c["name"] for c in dataset.columns] == ["ville", "prix", "y"]
    assert "Orléans" in alice.get(f"/datasets/{dataset.pk}/").content.decode()


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_it_detects_the_delimiter(alice, owner, delimiter):
    text = delimiter.join(["a", "b", "y"]) + "\n" + "".join(f"{i}{delimiter}{i},5{delimiter}{i % 2}\n" for i in range(8))
    assert upload(alice, text.encode()).status_code == 302
    assert Dataset.objects.get(owner=owner).n_columns == 3


def test_it_hides_datasets_from_others(dataset, outsider):
    client = Client()
    client.force_login(outsider)
    assert client.get(f"/datasets/{dataset.pk}/").status_code == 404
    assert client.get(f"/datasets/{dataset.pk}/delete/").status_code == 404
    assert client.post(f"/datasets/{dataset.pk}/delete/").status_code == 404
    assert "cities.csv" not in client.get("/datasets/").content.decode()
    assert client.get(f"/experiments/new/?dataset=csv:{dataset.pk}").status_code == 404
    assert Dataset.objects.filter(pk=dataset.pk).exists()


def test_it_deletes_after_saying_what_happens(alice, owner, dataset, django_capture_on_commit_callbacks):
    spec = {"dataset": {"kind": "csv", "id": dataset.pk}, "task": "classification", "target": "y",
            "preprocessing": ["one_hot_encoder"], "models": ["LogisticRegression"], "cv": {"folds": 2}}
    experiment = Experiment.objects.create(owner=owner, name="Uses cities", spec=spec)
    Run.objects.create(owner=owner, experiment=experiment, name="old run", spec=spec, status=Run.Status.COMPLETED,
                       best_score=0.9)
    body = alice.get(f"/datasets/{dataset.pk}/delete/").content.decode()
    assert "Uses cities" in body and "cannot be launched again until you pick another dataset" in body
    assert "Finished runs keep their results, logs and spec and stay readable" in body
    assert "still queued or running" not in body
    Run.objects.create(owner=owner, name="live run", spec=spec)  # queued
    assert "1 run on it is still queued or running" in alice.get(f"/datasets/{dataset.pk}/delete/").content.decode()
    path = Path(dataset.file.path)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post(f"/datasets/{dataset.pk}/delete/")
    assert response.status_code == 302
    assert not Dataset.objects.exists() and not path.exists()
    run = Run.objects.get(name="old run")
    assert run.best_score == 0.9 and run.spec["dataset"]["id"] == dataset.pk  # the run's results stay
