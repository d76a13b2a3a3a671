"""HTML and script payloads in everything a user can name or upload render as text, on every page that shows it.

The payloads go where users put them: run, experiment and model names, log messages and step details (the
engine's reporter, as a run writes them), fold-table variant descriptions, CSV column names and cells (through
the real upload). Each page is read as the owner and must hold the escaped text and never the raw markup; the
fragments the WebSocket pushes (live.fragments.render_messages) are checked the same way. A second sweep sends
the payloads in every query parameter the views read, to every page of the URL configuration, for reflected
markup. tests/browser/test_xss.py proves in Chromium that nothing runs.
"""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils.html import escape

from datasets.models import Dataset
from experiments.models import Experiment
from results import promotion
from runs.control import launch_run
from live.fragments import render_messages
from runs.models import Run, RunStep, events_after
from tests.helpers import reporter_for
from tests.routes import http_routes, parameters
from tests.test_results_page import completed_run, scores

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
PAYLOADS = (SCRIPT, IMG)
# What must never reach a page unescaped: the start of either payload's markup.
RAW = ("<script>alert", "<img src=x")


def payload_csv():
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([SCRIPT, IMG, "size", "label"])
    for i in range(6):
        writer.writerow([f"{SCRIPT}{i}", IMG, i + 0.5, "yes" if i % 2 else "no"])
    return out.getvalue().encode()


@pytest.fixture
def staged(owner, settings, tmp_path, iris_spec):
    """The owner's things, each named with a payload."""
    settings.MEDIA_ROOT = tmp_path
    client = Client()
    client.force_login(owner)
    response = client.post("/datasets/upload/", {"file": SimpleUploadedFile("data.csv", payload_csv()),
                                                 "name": SCRIPT})
    assert response.status_code == 302, response.content.decode()[:500]
    dataset = Dataset.objects.get(owner=owner)
    assert [c["name"] for c in dataset.columns][:2] == [SCRIPT, IMG]

    experiment = Experiment.objects.create(owner=owner, name=IMG, spec=iris_spec)
    run = completed_run(owner, tmp_path, iris_spec, name=SCRIPT)
    scores(run, 3, IMG, [0.5, 0.6, 0.7], branch=SCRIPT)
    Run.objects.filter(pk=run.pk).update(experiment=experiment)
    other = completed_run(owner, tmp_path, iris_spec, name=IMG)
    model = promotion.promote(run, owner, SCRIPT)

    # A live run: the log panel and steps as the engine writes them, and the events the socket pushes.
    live = launch_run(owner, spec=iris_spec, name=IMG)
    live.mark_running("w")
    reporter = reporter_for(live)
    step = RunStep.objects.filter(run=live).order_by("order").first()
    reporter.step(step.name, RunStep.Status.RUNNING)
    for payload in PAYLOADS:
        reporter.log("warning", f"bad value {payload}")
    reporter.variant(1, 1, f"variant {IMG}", SCRIPT)
    reporter.step(step.name, RunStep.Status.FAILED, f"detail {SCRIPT}")
    live.refresh_from_db()
    return {"client": client, "dataset": dataset, "experiment": experiment, "run": run, "other": other,
            "model": model, "live": live}


def assert_escaped(html, where, expect=PAYLOADS):
    raw = [r for r in RAW if r in html]
    assert not raw, f"{where} shows raw markup {raw}"
    for payload in expect:
        assert escape(payload) in html, f"{where} does not show {payload!r} as text"


def test_it_escapes_payloads_on_every_page_that_shows_them(staged):
    s = staged
    client, run, live = s["client"], s["run"], s["live"]
    pages = {
        "/": PAYLOADS,  # run names
        f"/runs/{run.pk}/": (SCRIPT,),
        f"/runs/{live.pk}/": PAYLOADS,  # name, log panel, step detail
        f"/runs/{live.pk}/logs/": PAYLOADS,
        f"/runs/{live.pk}/live/": PAYLOADS,
        f"/runs/{live.pk}/live/?after=0": PAYLOADS,
        f"/runs/{run.pk}/results/": PAYLOADS,  # fold table: variant description and branch
        f"/runs/{run.pk}/results/?row={SCRIPT}/3": PAYLOADS,
        f"/compare/?runs={run.pk},{s['other'].pk}": PAYLOADS,
        "/experiments/": (IMG,),
        f"/experiments/{s['experiment'].pk}/": (IMG,),
        "/datasets/": (SCRIPT,),
        f"/datasets/{s['dataset'].pk}/": PAYLOADS,  # column names, profile, preview cells
        f"/datasets/{s['dataset'].pk}/delete/": (SCRIPT,),
        f"/experiments/new/?dataset=csv:{s['dataset'].pk}": (SCRIPT,),  # the wizard, on the dataset step
        "/models/": (SCRIPT,),
        f"/models/{s['model'].pk}/": (SCRIPT,),
    }
    for url, expect in pages.items():
        response = client.get(url, follow=True)
        assert response.status_code == 200, f"{url} answered {response.status_code}"
        assert_escaped(response.content.decode(), url, expect)


def test_it_escapes_the_fragments_the_socket_pushes(staged):
    live = staged["live"]
    html = render_messages(live.pk, events_after(live.pk, 0))
    assert_escaped(html, "the pushed fragments")


def test_it_escapes_payloads_in_the_admin(staged, staff):
    client = Client()
    client.force_login(staff)
    s = staged
    for url in ("/admin/runs/run/", f"/admin/runs/run/{s['live'].pk}/change/", "/admin/runs/logentry/",
                "/admin/experiments/experiment/", f"/admin/datasets/dataset/{s['dataset'].pk}/change/"):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert not [r for r in RAW if r in html], f"{url} shows raw markup"


def test_it_never_reflects_markup_from_the_query_string(staged):
    """Every GET route of the URL configuration, with the payload in every query parameter a view reads."""
    s = staged
    ids = {"run_id": s["run"].pk, "experiment_id": s["experiment"].pk, "dataset_id": s["dataset"].pk,
           "model_id": s["model"].pk}
    names = ("page", "before", "after", "sort", "dir", "row", "runs", "dataset", "target", "task", "step", "folds",
             "noise", "from_run", "evaluate_model", "reset", "status", "experiment", "q", "search", "level")
    query = "&".join(f"{name}={p}" for name in names for p in PAYLOADS).replace("#", "%23")
    checked = 0
    for route in http_routes():
        if route.route.startswith(("admin/", "api/")) or set(parameters(route)) - set(ids):
            continue  # the admin is Django's; the API answers JSON
        path = "/" + route.route
        for name, value in ids.items():
            path = path.replace(f"<int:{name}>", str(value))
        response = s["client"].get(f"{path}?{query}")
        assert response.status_code < 500, f"{path} answered {response.status_code} to the payload query"
        body = b"".join(response.streaming_content) if response.streaming else response.content
        html = body.decode("utf-8", "replace")
        assert not [r for r in RAW if r in html], f"{path} reflects raw markup from its query string"
        checked += 1
    assert checked > 15
