"""Files on an S3-compatible object store, for web processes and workers on different machines.

The object store is real: moto's S3 server (`python -m moto.server`), an HTTP server speaking the S3 protocol,
in its own process on a free port. Each machine is stood in for by a process with its own MEDIA_ROOT and its
own temporary directory; the only thing they share besides PostgreSQL and Redis is the bucket.
"""

import hashlib
import io
import json
import sys
import uuid
import zipfile

import boto3
import httpx
import pytest
from rest_framework.authtoken.models import Token

from datasets.models import Dataset
from experiments.models import RegisteredModel
from runs.models import Run
from tests.helpers import Process, free_port, serve_daphne, session_key_for, start_worker, wait_for

pytestmark = pytest.mark.system  # its tests start processes (tests/tiers.py)

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "runwatch-test", "AWS_SECRET_ACCESS_KEY": "runwatch-test-secret"}
# 60 rows, two numeric features and a label that follows them, so a small model learns it.
CSV = "petal,sepal,label\n" + "".join(f"{i % 10},{(i * 7) % 13},{int(i % 10 >= 5)}\n" for i in range(60))


@pytest.fixture(scope="module")
def s3_server():
    """moto in server mode: a real S3-protocol HTTP server in its own process, on a free port."""
    port = free_port()
    process = Process([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], "moto")
    process.url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(process.url + "/", timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=60, message=f"moto's S3 server on port {port}")
    yield process
    process.stop()


@pytest.fixture
def bucket(s3_server):
    """A new, empty bucket on the S3 server; `.env` is what a process needs to keep its files there."""
    name = f"runwatch-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_server.url, region_name=REGION,
                          aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    client.create_bucket(Bucket=name)
    client.name = name
    client.env = {"RUNWATCH_S3_BUCKET": name, "AWS_S3_ENDPOINT_URL": s3_server.url, "AWS_S3_REGION_NAME": REGION,
                  **CREDENTIALS}
    return client


def keys(bucket):
    return sorted(item["Key"] for item in bucket.list_objects_v2(Bucket=bucket.name).get("Contents", []))


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def machines(transactional_db, bucket, tmp_path, settings):
    """A web machine (daphne) and a worker machine, each with its own MEDIA_ROOT and temporary directory."""
    disks = {name: {"media": tmp_path / name / "media", "tmp": tmp_path / name / "tmp"} for name in ("web", "worker")}
    for disk in disks.values():
        disk["media"].mkdir(parents=True)
        disk["tmp"].mkdir()
    # The test process is a third machine: it only talks HTTP and SQL, so its MEDIA_ROOT must stay empty too.
    settings.MEDIA_ROOT = tmp_path / "test-media"
    settings.MEDIA_ROOT.mkdir()
    web = serve_daphne(MEDIA_ROOT=disks["web"]["media"], TMPDIR=disks["web"]["tmp"],
                       **bucket.env)
    worker = start_worker(MEDIA_ROOT=disks["worker"]["media"], TMPDIR=disks["worker"]["tmp"], **bucket.env)
    yield web, disks
    worker.stop()
    web.stop()


def session_client(url, user):
    client = httpx.Client(base_url=url, timeout=60)
    client.cookies.set("sessionid", session_key_for(user))
    return client


def api_client(url, user):
    token, _ = Token.objects.get_or_create(user=user)
    return httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Token {token.key}"})


def upload_through_the_page(client, name, content):
    client.get("/datasets/upload/").raise_for_status()  # sets the CSRF cookie
    response = client.post("/datasets/upload/", files={"file": (name, content.encode(), "text/csv")},
                           headers={"X-CSRFToken": client.cookies["csrftoken"]})
    assert response.status_code == 302, response.text
    return Dataset.objects.get(name=name)


def launch_and_finish(api, spec):
    response = api.post("/api/v1/runs/", json={"spec": spec})
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]

    def finished():
        body = api.get(f"/api/v1/runs/{run_id}/wait/", params={"timeout": 20}).json()
        return body if body["is_terminal"] else None

    return wait_for(finished, timeout=240, interval=0.2, message=f"run {run_id} to finish on the worker")


def test_it_runs_everything_through_the_object_store_with_no_shared_disk(machines, bucket, owner, outsider, settings):
    web, disks = machines
    page, api = session_client(web.url, owner), api_client(web.url, owner)

    # Upload through the web machine: the file goes to the bucket, and the page previews it from there.
    dataset = upload_through_the_page(page, "flowers.csv", CSV)
    assert keys(bucket) == [dataset.file.name]
    assert dataset.sha256 == hashlib.sha256(CSV.encode()).hexdigest()
    detail = page.get(f"/datasets/{dataset.pk}/")
    assert detail.status_code == 200 and "The file is missing" not in detail.text and "sepal" in detail.text

    # A cross-validation run on the worker machine reads the CSV from the bucket and stores its bundle there.
    spec = {"dataset": dataset.spec_ref(), "task": "classification", "target": "label",
            "models": [{"estimator": "LogisticRegression", "params": {"C": [0.1, 1.0], "max_iter": [500]}}],
            "cv": {"kind": "stratified_kfold", "folds": 3, "shuffle": True, "seed": 1}, "metric": "accuracy"}
    trained = launch_and_finish(api, spec)
    assert (trained["status"], trained["has_model"]) == ("completed", True), trained["message"]
    run = Run.objects.get(pk=trained["id"])
    assert run.model_file == f"models/run-{run.pk}/run-{run.pk}-model.zip"
    assert run.model_file in keys(bucket)

    # The web machine serves the worker's bundle, verified, on the API and on the page.
    download = api.get(f"/api/v1/runs/{run.pk}/model/")
    assert download.status_code == 200, download.text
    bundle = download.content
    assert hashlib.sha256(bundle).hexdigest() == download.headers["X-Model-SHA256"] == run.model_sha256
    with zipfile.ZipFile(io.BytesIO(bundle)) as z:
        assert json.loads(z.read("metadata.json"))["data"]["sha256"] == dataset.sha256  # trained on that CSV
    assert page.get(f"/runs/{run.pk}/model/").content == bundle
    assert session_client(web.url, outsider).get(f"/runs/{run.pk}/model/").status_code == 404

    # Promotion copies the bundle inside the bucket; the registry serves the copy.
    promoted = api.post(f"/api/v1/runs/{run.pk}/promote/", json={"name": "flowers-v1"})
    assert promoted.status_code == 201, promoted.text
    model = RegisteredModel.objects.get(pk=promoted.json()["id"])
    assert model.file.name in keys(bucket) and model.sha256 == run.model_sha256 and model.size_bytes == len(bundle)
    assert api.get(f"/api/v1/models/{model.pk}/download/").content == bundle
    assert page.get(f"/models/{model.pk}/download/").content == bundle

    # An evaluation run on the worker loads the bundle from the bucket (checking its SHA-256) and scores it.
    evaluation = launch_and_finish(api, {"runner": "evaluation", "dataset": dataset.spec_ref(), "task": "classification",
                                         "target": "label", "evaluation": {"run": run.pk}, "metric": "accuracy"})
    assert evaluation["status"] == "completed", evaluation["message"]
    assert evaluation["best_score"] is not None and evaluation["has_model"] is False

    # A bundle changed in the bucket is refused by downloads and by evaluation runs alike.
    bucket.put_object(Bucket=bucket.name, Key=run.model_file, Body=bundle[:-1] + bytes([bundle[-1] ^ 1]))
    refused = api.get(f"/api/v1/runs/{run.pk}/model/")
    assert refused.status_code == 409 and refused.json()["expected_sha256"] == run.model_sha256
    tampered = launch_and_finish(api, {"runner": "evaluation", "dataset": dataset.spec_ref(), "task": "classification",
                                       "target": "label", "evaluation": {"run": run.pk}, "metric": "accuracy"})
    assert tampered["status"] == "failed" and "has changed since it was exported" in tampered["error_message"]

    # Nothing landed on any machine's disk: every file is in the bucket, every temporary file is gone.
    assert keys(bucket) == sorted([dataset.file.name, run.model_file, model.file.name])
    for name, disk in disks.items():
        assert files_under(disk["media"]) == [], f"files in the {name} machine's MEDIA_ROOT"
        assert files_under(disk["tmp"]) == [], f"files left in the {name} machine's temporary directory"
    assert files_under(settings.MEDIA_ROOT) == []


def test_it_keeps_uploads_out_of_media_root_when_a_bucket_is_set(bucket, settings, tmp_path, owner, client):
    """In one process too: with the bucket configured, a page upload and a download never touch MEDIA_ROOT."""
    settings.MEDIA_ROOT = tmp_path
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": bucket.name, "endpoint_url": bucket.env["AWS_S3_ENDPOINT_URL"], "region_name": REGION,
        "access_key": CREDENTIALS["AWS_ACCESS_KEY_ID"], "secret_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "file_overwrite": False}}}
    client.force_login(owner)
    from django.core.files.uploadedfile import SimpleUploadedFile

    assert client.post("/datasets/upload/", {"file": SimpleUploadedFile("a.csv", CSV.encode())}).status_code == 302
    assert client.post("/datasets/upload/", {"file": SimpleUploadedFile("a.csv", CSV.encode())}).status_code == 302
    first, second = Dataset.objects.order_by("pk")
    assert first.file.name != second.file.name  # two uploads of one name are two objects, as on a disk
    assert keys(bucket) == sorted([first.file.name, second.file.name])

    run = Run.objects.create(owner=owner, name="r", spec={}, status=Run.Status.COMPLETED, model_file="models/gone.zip",
                             model_sha256="ab" * 32)
    assert client.get(f"/runs/{run.pk}/model/").status_code == 404  # a missing object is a 404, not a 500
    assert files_under(tmp_path) == []
