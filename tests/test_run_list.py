"""The runs list: filters, search and pagination in the URL, rows, row actions, and the polling endpoint."""

import itertools
import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from experiments.models import Experiment
from runs.control import launch_run
from runs.models import Run

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def make_run(owner, experiment, name, status, queued_days_ago=0, finished_days_ago=None, **fields):
    queued = NOW - timedelta(days=queued_days_ago)
    finished = NOW - timedelta(days=finished_days_ago) if finished_days_ago is not None else None
    return Run(owner=owner, experiment=experiment, name=name, spec=experiment.spec, runner="cv", status=status,
               queued_at=queued, started_at=queued if status != "queued" else None, finished_at=finished, **fields)


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def world(owner, outsider, staff, experiment, iris_spec):
    """Runs of the owner (two experiments, every status, old and new) and of the outsider."""
    other = Experiment.objects.create(owner=owner, name="Wine ridge", spec=iris_spec)
    theirs = Experiment.objects.create(owner=outsider, name="Mallory's", spec=iris_spec)
    Run.objects.bulk_create([
        make_run(owner, experiment, "iris nightly", "completed", 60, 59, best_score=0.91),
        make_run(owner, experiment, "iris quick", "completed", 2, 1, best_score=0.95),
        make_run(owner, experiment, "Iris failing", "failed", 40, 40, message="Dataset missing"),
        make_run(owner, other, "wine sweep", "running", 0, total_fits=10, finished_fits=4, current_step="cross_validate"),
        make_run(owner, other, "wine queued", "queued", 0),
        make_run(owner, other, "wine stopped", "stopped", 10, 9),
        make_run(outsider, theirs, "iris of mallory", "completed", 1, 1),
        make_run(outsider, theirs, "mallory running", "running", 0),
    ])
    return {"experiment": experiment, "other": other, "theirs": theirs}


def names(response):
    return sorted(re.findall(r'data-name="([^"]+?) #\d+"', response.content.decode()))


def expected(user, params):
    """The oracle: the same filters, in Python, over every run."""
    cutoff = NOW - timedelta(days=30)
    found = []
    for run in Run.objects.all():
        if not (user.is_staff or run.owner_id == user.pk):
            continue
        outdated = run.status in Run.TERMINAL and run.finished_at < cutoff
        checks = [
            not params.get("q") or params["q"].lower() in run.name.lower(),
            not params.get("status") or run.status == params["status"]
            or (params["status"] == "active" and run.status in Run.ACTIVE),
            not params.get("experiment") or run.experiment_id == params["experiment"],
            not params.get("start") or run.queued_at.date() >= params["start"],
            not params.get("end") or run.queued_at.date() <= params["end"],
            params.get("outdated") != "only" or outdated,
            params.get("outdated") != "hide" or not outdated,
        ]
        if all(checks):
            found.append(run.name)
    return sorted(found)


def test_it_requires_login(client):
    for url in (reverse("runs:list"), reverse("runs:rows")):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_it_filters_and_searches_in_every_combination_for_owner_outsider_and_staff(
        client, owner, outsider, staff, world):
    today = NOW.date()
    options = {
        "q": ["", "IRIS"],
        "status": ["", "active", "completed"],
        "experiment": ["", world["experiment"].pk],
        "dates": [(None, None), (today - timedelta(days=11), None), (today - timedelta(days=45), today - timedelta(days=3))],
        "outdated": ["", "only", "hide"],
    }
    checked = 0
    combinations = list(itertools.product(*options.values()))
    for user in (owner, outsider, staff):
        client.force_login(user)
        # Staff: every other combination (the same code path as the owner's; it only skips the owner filter).
        for q, status, exp, (start, end), outdated in combinations[::2] if user == staff else combinations:
            params = {"q": q, "status": status, "experiment": exp, "start": start, "end": end, "outdated": outdated}
            query = {k: v for k, v in params.items() if v not in ("", None)}
            response = client.get(reverse("runs:list"), query, HTTP_HX_REQUEST="true")  # the table alone
            if exp and user == outsider:
                # Someone else's experiment is not a choice: a field error, not their runs.
                assert response.status_code == 400 and "Fix the filters above" in response.content.decode()
                assert names(response) == []
                continue
            assert response.status_code == 200, query
            assert names(response) == expected(user, query), (user, query)
            checked += 1
    assert checked == len(combinations) * 2 + len(combinations[::2]) - len(combinations) // 2


def test_it_never_shows_an_outsider_the_owners_runs(client, outsider, world):
    client.force_login(outsider)
    html = client.get(reverse("runs:list")).content.decode()
    assert "iris of mallory" in html and "mallory running" in html
    assert "wine" not in html.lower() and "iris nightly" not in html and "Wine ridge" not in html


def test_it_marks_outdated_runs_after_the_setting(owner_client, world, settings):
    html = owner_client.get(reverse("runs:list")).content.decode()
    row = re.search(r'<tr id="run-row-\d+"[^>]*data-name="iris nightly[\s\S]*?</tr>', html).group(0)
    assert ">outdated</span>" in row and "more than 30 days" in row
    assert html.count(">outdated</span>") == 2  # 59 and 40 days old; 9 days and 1 day are not
    settings.RUNWATCH = {**settings.RUNWATCH, "OUTDATED_DAYS": 5}
    response = owner_client.get(reverse("runs:list"), {"outdated": "only"})
    assert names(response) == ["Iris failing", "iris nightly", "wine stopped"]
    assert "older than 5 days" in response.content.decode()


def test_it_answers_bad_filters_with_field_errors(owner_client, world):
    for query, message in [
        ({"status": "exploded"}, "Select a valid choice"),
        ({"start": "yesterday"}, "Enter a valid date"),
        ({"start": "2026-05-02", "end": "2026-05-01"}, "The end date is before the start date"),
        ({"outdated": "maybe"}, "Select a valid choice"),
        ({"experiment": "abc"}, "Select a valid choice"),
        ({"q": "x" * 201}, "at most 200 characters"),
    ]:
        response = owner_client.get(reverse("runs:list"), query)
        html = response.content.decode()
        assert response.status_code == 400 and message in html, query
        assert 'aria-invalid="true"' in html or "<select" in html
        assert names(response) == [] and "Fix the filters above" in html


def test_it_keeps_the_filters_in_the_pagination_links(owner_client, owner, experiment):
    Run.objects.bulk_create([make_run(owner, experiment, f"bulk {i}", "completed", 1, 1) for i in range(30)]
                            + [make_run(owner, experiment, "other", "failed", 1, 1)])
    response = owner_client.get(reverse("runs:list"), {"status": "completed", "q": "bulk"})
    html = response.content.decode()
    assert len(names(response)) == 25 and "Page 1 of 2" in html
    link = re.search(r'<a href="([^"]+)">Older →</a>', html).group(1)
    assert "status=completed" in link and "q=bulk" in link and "page=2" in link
    second = owner_client.get(reverse("runs:list") + link.replace("&amp;", "&"))
    assert len(names(second)) == 5 and "Page 2 of 2" in second.content.decode()
    assert 'value="bulk"' in second.content.decode()  # the form shows the filters it applied
    # A page past the end of a filtered list is the last page, with a notice.
    past = owner_client.get(reverse("runs:list"), {"status": "completed", "page": "7"}).content.decode()
    assert "There is no page 7" in past and "Page 2 of 2" in past


def test_it_says_what_to_do_when_empty(client, owner, experiment, outsider):
    client.force_login(owner)
    html = client.get(reverse("runs:list")).content.decode()
    assert "No runs yet: launch one from an experiment" in html
    html = client.get(reverse("runs:list"), {"status": "failed"}).content.decode()
    assert "No runs match these filters" in html and "clear the filters" in html
    client.force_login(outsider)  # no experiments either
    assert "design an experiment</a> first" in client.get(reverse("runs:list")).content.decode()


def test_it_shows_the_columns_of_a_running_row(owner_client, owner, experiment, world):
    run = Run.objects.get(name="wine sweep")
    Run.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(seconds=130), eta_seconds=300, best_score=0.8123)
    html = owner_client.get(reverse("runs:list")).content.decode()
    row = re.search(rf'<tr id="run-row-{run.pk}"[\s\S]*?</tr>', html).group(0)
    assert "Step 3 of 5: Cross-validate" in row
    assert 'class="live-dot"' in row and "LIVE" in row
    assert re.search(r"Started <span[^>]*>2m</span> ago · ETA <span[^>]*>5m</span>", row)
    assert "0.8123" in row and "Wine ridge" in row and reverse("experiments:detail", args=[run.experiment_id]) in row
    assert re.search(r'<time datetime="[^"]+" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC">2\xa0minutes ago</time>', row)
    assert "Stop" in row and "Re-run" not in row
    done = re.search(r'<tr id="run-row-\d+"[^>]*data-name="iris quick[\s\S]*?</tr>', html).group(0)
    assert "Re-run" in done and "0.9500" in done and 'data-note="Completed · best Accuracy 0.9500"' in done


def test_it_shows_a_queued_runs_position_and_why_it_waits(owner_client, owner, experiment,
                                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # enqueued on commit, as in production
        first, second = launch_run(owner, experiment=experiment), launch_run(owner, experiment=experiment)
    html = owner_client.get(reverse("runs:list")).content.decode()
    row = re.search(rf'<tr id="run-row-{second.pk}"[\s\S]*?</tr>', html).group(0)
    assert "2nd in queue" in row and "No worker is running" in row
    assert re.search(rf'<tr id="run-row-{first.pk}"[\s\S]*?1st in queue', html)


def test_it_renders_a_page_in_a_constant_number_of_queries(owner_client, owner, experiment):
    def count():
        with CaptureQueriesContext(connection) as queries:
            assert owner_client.get(reverse("runs:list")).status_code == 200
        return len(queries)

    Run.objects.bulk_create([make_run(owner, experiment, f"r{i}", "running", 0, current_step="cross_validate") for i in range(10)])
    small = count()
    Run.objects.bulk_create(make_run(owner, experiment, f"old {i}", "completed", 100, 99) for i in range(9980))
    Run.objects.bulk_create([make_run(owner, experiment, f"live {i}", "running", 0, current_step="cross_validate")
                             for i in range(10)])
    assert Run.objects.count() == 10_000 and Run.objects.filter(status="running").count() == 20
    assert count() == small
    with CaptureQueriesContext(connection) as queries:
        owner_client.get(reverse("runs:list"), {"status": "running", "q": "live", "outdated": "hide"})
    assert len(queries) == small


def test_it_polls_only_the_asked_rows_of_the_user(client, owner, outsider, staff, world):
    mine = list(Run.objects.filter(owner=owner).values_list("pk", flat=True))
    theirs = list(Run.objects.filter(owner=outsider).values_list("pk", flat=True))
    asked = ",".join(map(str, mine[:2] + theirs))
    for user, visible in ((owner, mine[:2]), (outsider, theirs), (staff, mine[:2] + theirs)):
        client.force_login(user)
        response = client.get(reverse("runs:rows"), {"ids": asked})
        rows = json.loads(response.content)["rows"]
        assert response.status_code == 200 and sorted(r["run"] for r in rows) == sorted(visible)
        assert all(f'id="run-row-{r["run"]}"' in r["html"] for r in rows)
    client.force_login(owner)
    newer = client.get(reverse("runs:rows"), {"after": min(mine)}).json()["rows"]
    assert sorted(r["run"] for r in newer) == sorted(p for p in mine if p > min(mine))
    for bad in ({"ids": "1,x"}, {"ids": ",".join(["1"] * 101)}, {"after": "soon"}, {"ids": "-3"}):
        response = client.get(reverse("runs:rows"), bad)
        assert response.status_code == 400 and "ids" in response.json()["errors"]


def test_it_stops_a_run_from_its_row(owner_client, outsider, owner, experiment):
    run = launch_run(owner, experiment=experiment)
    stranger = Client()
    stranger.force_login(outsider)
    assert stranger.post(reverse("live:cancel", args=[run.pk]) + "?from=list", HTTP_HX_REQUEST="true").status_code == 404
    response = owner_client.post(reverse("live:cancel", args=[run.pk]) + "?from=list", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith(f'<tr id="run-row-{run.pk}"')
    assert 'data-status="stopped"' in html and "Re-run" in html
    again = owner_client.post(reverse("live:cancel", args=[run.pk]) + "?from=list", HTTP_HX_REQUEST="true")
    assert again.status_code == 200 and 'data-status="stopped"' in again.content.decode()  # harmless twice
    finished = Run.objects.create(owner=owner, experiment=experiment, name="done", spec=experiment.spec,
                                  status="completed")
    refused = owner_client.post(reverse("live:cancel", args=[finished.pk]) + "?from=list", HTTP_HX_REQUEST="true")
    assert refused.status_code == 409 and "already completed" in refused.content.decode()


def test_it_reruns_a_finished_run_from_its_row(owner_client, owner, experiment):
    done = Run.objects.create(owner=owner, experiment=experiment, name="Iris baseline", spec=experiment.spec,
                              status="completed", finished_at=NOW)
    html = owner_client.get(reverse("runs:list")).content.decode()
    action = reverse("results:rerun", args=[done.pk])
    assert f'action="{action}"' in html
    response = owner_client.post(action)
    new = Run.objects.exclude(pk=done.pk).get()
    assert response.status_code == 302 and response["Location"] == new.get_absolute_url()
    assert new.rerun_of_id == done.pk and new.status == "queued"
