"""datasets/: upload a CSV (multipart), list, retrieve, delete."""

import hashlib
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from datasets.models import Dataset
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db
URL = "/api/v1/datasets/"
CSV = b"a,b,target\n1,2.5,x\n3,4.5,y\n5,6.5,x\n7,8.5,y\n"


def upload(client, content=CSV, filename="data.csv", **fields):
    return client.post(URL, {"file": SimpleUploadedFile(filename, content, "text/csv"), **fields}, format="multipart")


@pytest.fixture
def dataset(api, media):
    return Dataset.objects.get(pk=upload(api).json()["id"])


def test_it_uploads_a_csv(api, owner, media):
    response = upload(api, filename="mine.csv")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "mine.csv"
    assert body["kind"] == "csv"
    assert (body["n_rows"], body["n_columns"]) == (4, 3)
    # The same column profile the upload page records (the wizard reads it to suggest a target).
    assert body["columns"][1] == {"name": "b", "dtype": "float64", "kind": "numeric", "missing": 0, "distinct": 4,
                                  "min_class": 1, "whole": False, "flags": [], "stats": {
                                      "min": 2.5, "mean": 5.5, "max": 8.5, "edges": [2.5, 8.5],
                                      "histogram": [1, 0, 0, 1, 0, 0, 1, 0, 0, 1]}}
    assert body["sha256"] == hashlib.sha256(CSV).hexdigest()
    assert body["spec_ref"] == {"kind": "csv", "id": body["id"]}
    dataset = Dataset.objects.get(pk=body["id"])
    assert dataset.owner == owner and os.path.isfile(dataset.file.path)


def test_it_takes_a_name(api, media):
    assert upload(api, name="Customers").json()["name"] == "Customers"


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty"), (b'a,b\n"unterminated,1\n', "readable"), (b"\xff\xfe\x00bad", "readable")],
)
def test_it_rejects_unreadable_files_with_a_field_error(api, media, content, message):
    response = upload(api, content=content)
    assert response.status_code == 400
    assert message in " ".join(response.json()["file"]).lower()
    assert not Dataset.objects.exists()


def test_it_requires_a_file(api):
    response = api.post(URL, {"name": "no file"}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()


def test_it_rejects_json_uploads(api):
    response = api.post(URL, {"file": "a,b\n1,2"}, format="json")
    assert response.status_code == 415


def test_it_lists_only_my_datasets(api, outsider_api, staff_api, dataset):
    assert [d["id"] for d in api.get(URL).json()["results"]] == [dataset.pk]
    assert outsider_api.get(URL).json()["results"] == []
    assert [d["id"] for d in staff_api.get(URL).json()["results"]] == [dataset.pk]


def test_it_retrieves_a_dataset(api, outsider_api, staff_api, anon, dataset):
    assert api.get(f"{URL}{dataset.pk}/").json()["sha256"] == dataset.sha256
    assert outsider_api.get(f"{URL}{dataset.pk}/").status_code == 404
    assert staff_api.get(f"{URL}{dataset.pk}/").status_code == 200
    assert anon.get(f"{URL}{dataset.pk}/").status_code == 401


def test_it_deletes_a_dataset(api, outsider_api, dataset):
    assert outsider_api.delete(f"{URL}{dataset.pk}/").status_code == 404
    assert api.delete(f"{URL}{dataset.pk}/").status_code == 204
    assert not Dataset.objects.exists()


def test_it_removes_the_file_after_commit(api, dataset, django_capture_on_commit_callbacks):
    path = dataset.file.path
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"{URL}{dataset.pk}/").status_code == 204
    assert not os.path.exists(path)


def test_it_requires_authentication(anon):
    assert anon.get(URL).status_code == 401
    assert upload(anon).status_code == 401


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b"garbage", "multipart/form-data; boundary=xyz"),
        (b"garbage", "multipart/form-data"),  # no boundary at all
        (b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\na,b\n",
         "multipart/form-data; boundary=xyz"),  # never closed
    ],
)
def test_it_answers_malformed_multipart_with_a_json_error(live_api, owner, body, content_type):
    # Through daphne: Twisted used to refuse these itself, with an empty 400 Django never saw.
    import httpx

    token = client_for(owner)._credentials["HTTP_AUTHORIZATION"]
    response = httpx.post(f"{live_api.url}{URL}", content=body,
                          headers={"Content-Type": content_type, "Authorization": token})
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    message = " ".join(body.get("file", [])) + body.get("detail", "")
    assert "No file was submitted" in message or "Multipart form parse error" in message, body


def test_it_refuses_a_file_over_the_limit_through_daphne(transactional_db, live_media, owner):
    # The whole stack as deployed: daphne, the ASGI handler, the upload handlers, DRF. A 400 on `file` with the
    # page's sentence; never a 500, never a 201.
    import httpx

    from tests.helpers import serve_daphne

    server = serve_daphne(ready_path="/api/v1/schema/", MEDIA_ROOT=live_media, RUNWATCH_DATASET_MAX_UPLOAD_MB="1")
    try:
        token = client_for(owner)._credentials["HTTP_AUTHORIZATION"]
        content = b"a,y\n" + b"1,0\n" * (3 * 1024 * 1024 // 4 - 1)  # 3 MB, a valid CSV but for its size
        response = httpx.post(f"{server.url}{URL}", files={"file": ("big.csv", content, "text/csv")},
                              headers={"Authorization": token}, timeout=30)
    finally:
        server.stop()
    assert response.status_code == 400
    assert response.json() == {"file": ["The file is 3.0 MB; the limit is 1 MB."]}
    assert not Dataset.objects.exists()
    assert [p for p in live_media.rglob("*") if p.is_file()] == []
