"""Sharing a comparison: the link opens the compare page of its runs read-only and nothing else; it is refused
when revoked, expired or guessed, and by every other door (results, polling, the WebSocket); only the owner
of every run in it makes, lists and revokes it (page, API, admin). tests/test_sharing.py: a run's link."""

import re
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import access
from experiments.models import Experiment
from runs.control import launch_run
from runs.models import Run
from sharing.models import ComparedRun, ShareLink
from tests.test_compare import spec_paths
from tests.test_results_page import completed_run, media, scores  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

GUESSED = "y" * 43


@pytest.fixture
def two_runs(owner, media, iris_spec):  # noqa: F811
    first = completed_run(owner, media, iris_spec, name="Shared first")
    spec = {**iris_spec, "cv": {**iris_spec["cv"], "folds": 5}}
    second = completed_run(owner, media, spec, name="Shared second")
    Run.objects.filter(pk=second.pk).update(experiment=Experiment.objects.create(owner=owner, name="Secret study",
                                                                                 spec=spec))
    return first, second


@pytest.fixture
def link(two_runs, owner):
    return ShareLink.create_for_comparison(list(two_runs), owner)


def api_for(user):
    api = APIClient()
    api.force_authenticate(user)
    return api


def owner_urls(html):
    """Every href and form action of a page that is not a share link's own (/s/...), a static file or the
    brand's link to the site's front page (which sends an anonymous viewer to the login)."""
    found = re.findall(r'(?:href|action|hx-get|hx-post)="([^"#?][^"]*)"', html)
    return [u for u in found if u != "/" and not u.startswith(("/s/", "/static/"))]


def test_it_lets_the_owner_share_a_comparison_from_the_compare_page(client, owner, two_runs):
    first, second = two_runs
    client.force_login(owner)
    page = client.get(reverse("results:compare") + f"?runs={second.pk},{first.pk}").content.decode()
    assert 'action="/compare/share/"' in page and f'name="runs" value="{second.pk},{first.pk}"' in page
    response = client.post(reverse("sharing:share_comparison"), {"runs": f"{second.pk},{first.pk}"})
    assert response.status_code == 201
    link = ShareLink.objects.get()
    assert link.run_id is None and link.run_ids() == [second.pk, first.pk]  # the compared order is kept
    assert Client().get(response.context["url"].split("testserver", 1)[1]).status_code == 200


def test_it_shows_the_comparison_read_only_to_anyone_with_the_link(link, two_runs):
    first, second = two_runs
    share, token = link
    response = Client().get(f"/s/{token}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Shared first" in html and "Shared second" in html and "Shared read-only comparison" in html
    assert 'id="cmp-boards"' in html and spec_paths(html) == ["cv.folds"]  # the boards, the differences
    assert owner_urls(html) == [], owner_urls(html)  # no run, experiment, compare, share or list link
    for absent in ("share-form", "All runs", "Secret study", 'name="runs"'):
        assert absent not in html, absent
    assert f'action="/s/{token}/"' in html  # the Differences only checkbox comes back to the link
    every = Client().get(f"/s/{token}/?settings=all").content.decode()
    assert len(spec_paths(every)) == 17
    fragment = Client().get(f"/s/{token}/?settings=all", headers={"HX-Request": "true", "HX-Target": "spec-table"})
    assert fragment.content.decode().lstrip().startswith('<div class="table-wrap" id="spec-table"')
    share.refresh_from_db()
    assert share.last_used_at is not None


def test_it_polls_the_link_while_a_compared_run_is_active(owner, two_runs):
    first, _ = two_runs
    running = launch_run(owner, spec=first.spec, name="Still going")
    running.mark_running("w1")
    scores(running, 1, "A", [0.91])
    _, token = ShareLink.create_for_comparison([first, running], owner)
    html = Client().get(f"/s/{token}/").content.decode()
    assert f'hx-get="/s/{token}/" hx-trigger="every 3s"' in html
    body = Client().get(f"/s/{token}/", headers={"HX-Request": "true"}).content.decode()
    assert body.lstrip().startswith('<div id="compare-body"') and "Still going" in body


def test_it_opens_no_other_door_with_a_comparisons_link(link, two_runs):
    first, second = two_runs
    _, token = link
    for url in (f"/s/{token}/results/", f"/s/{token}/live/"):
        assert Client().get(url).status_code == 404, url
    anonymous = Client()
    for url in (f"/runs/{first.pk}/", f"/runs/{first.pk}/results/", f"/runs/{first.pk}/model/",
                reverse("results:compare") + f"?runs={first.pk},{second.pk}"):
        response = anonymous.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url


def test_it_gives_a_comparisons_bearer_its_runs_only(owner, link, two_runs, experiment):
    share, _ = link
    other = launch_run(owner, experiment=experiment)
    grant = share.grant()
    assert sorted(access.visible(grant, Run.objects.all()).values_list("pk", flat=True)) == sorted(r.pk for r in two_runs)
    assert not access.can_view(grant, other) and not any(access.can_act(grant, r) for r in two_runs)
    assert not access.visible(grant, Experiment.objects.all()).exists()


@pytest.mark.django_db(transaction=True)
def test_it_refuses_a_comparisons_link_on_the_websocket(link):
    from tests.test_sharing_stream import TIMEOUT, socket

    _, token = link

    async def scenario():
        for path in (f"/ws/share/{token}/", f"/ws/share/{token}/fragments/"):
            comm = socket(path)
            await comm.connect(timeout=TIMEOUT)
            assert await comm.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": 4404}, path

    async_to_sync(scenario)()


def test_it_answers_404_for_a_revoked_expired_or_guessed_comparison(owner, two_runs):
    revoked, revoked_token = ShareLink.create_for_comparison(list(two_runs), owner)
    revoked.revoke()
    expired, expired_token = ShareLink.create_for_comparison(list(two_runs), owner)
    ShareLink.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    missing = Client().get(f"/s/{GUESSED}/")
    assert missing.status_code == 404
    for token in (revoked_token, expired_token):
        response = Client().get(f"/s/{token}/")
        assert (response.status_code, response.content) == (404, missing.content)


def test_it_answers_404_once_fewer_than_two_of_its_runs_remain(link, two_runs):
    _, token = link
    two_runs[1].delete()
    assert ComparedRun.objects.count() == 1 and Client().get(f"/s/{token}/").status_code == 404


def test_it_throttles_guessed_tokens_for_comparisons_too(link, settings):
    settings.RUNWATCH = {**settings.RUNWATCH, "SHARE_MISS_RATE": "2/min"}
    _, token = link
    viewer = Client()
    assert [viewer.get(f"/s/{GUESSED}{i}/").status_code for i in range(2)] == [404, 404]
    assert viewer.get(f"/s/{token}/").status_code == 429


def test_it_refuses_sharing_a_comparison_with_someone_elses_run(client, outsider, owner, media, two_runs):  # noqa: F811
    first, _ = two_runs
    theirs = completed_run(outsider, media, first.spec, name="Outsider's")
    client.force_login(owner)
    for runs in (f"{first.pk},{theirs.pk}", f"{first.pk},999999"):
        assert client.post(reverse("sharing:share_comparison"), {"runs": runs}).status_code == 404, runs
    assert client.post(reverse("sharing:share_comparison"), {"runs": f"{first.pk}"}).status_code == 404
    assert not ShareLink.objects.exists()


def test_it_refuses_an_expiry_in_the_past_for_a_comparison(client, owner, two_runs):
    client.force_login(owner)
    past = (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    ids = ",".join(str(r.pk) for r in two_runs)
    response = client.post(reverse("sharing:share_comparison"), {"runs": ids, "expires_at": past})
    assert response.status_code == 400 and "expires_at" in response.context["form"].errors
    assert 'id="expires-error"' in response.content.decode() and not ShareLink.objects.exists()


def test_it_lists_and_revokes_the_owners_comparison_links(client, owner, outsider, link, two_runs):
    share, token = link
    client.force_login(owner)
    listing = client.get(reverse("sharing:links")).content.decode()
    first, second = two_runs
    assert f"share-link-{share.pk}" in listing and f"Comparison of #{first.pk}, #{second.pk}" in listing
    outsider_client = Client()
    outsider_client.force_login(outsider)
    assert f"share-link-{share.pk}" not in outsider_client.get(reverse("sharing:links")).content.decode()
    assert outsider_client.post(reverse("sharing:revoke", args=[share.pk])).status_code == 404
    assert Client().get(f"/s/{token}/").status_code == 200
    assert client.post(reverse("sharing:revoke", args=[share.pk])).status_code == 302
    assert Client().get(f"/s/{token}/").status_code == 404


def test_it_lists_comparison_links_in_the_admin(client, staff, link, two_runs):
    share, _ = link
    client.force_login(staff)
    html = client.get(reverse("admin:sharing_sharelink_changelist")).content.decode()
    first, second = two_runs
    assert f"Share link #{share.pk} of a comparison" in html and f"comparison of runs #{first.pk}, #{second.pk}" in html
    assert client.get(reverse("admin:sharing_sharelink_change", args=[share.pk])).status_code == 200


# --- The API --------------------------------------------------------------------------------------------


def test_it_creates_and_revokes_a_comparison_link_through_the_api(owner, two_runs):
    first, second = two_runs
    api = api_for(owner)
    created = api.post("/api/v1/shares/", {"runs": [second.pk, first.pk]}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["kind"], body["runs"], body["run"]) == ("comparison", [second.pk, first.pk], None)
    assert Client().get(f"/s/{body['token']}/").status_code == 200
    listed = api.get("/api/v1/shares/").json()["results"]
    assert [(row["id"], row["kind"]) for row in listed] == [(body["id"], "comparison")]
    assert api.post(f"/api/v1/shares/{body['id']}/revoke/").json()["status"] == "revoked"
    assert Client().get(f"/s/{body['token']}/").status_code == 404


def test_it_answers_field_errors_for_bad_comparisons_through_the_api(owner, outsider, media, two_runs):  # noqa: F811
    first, second = two_runs
    theirs = completed_run(outsider, media, first.spec, name="Outsider's")
    api = api_for(owner)
    for payload in ({"runs": [first.pk, theirs.pk]}, {"runs": [first.pk, 999999]}, {"runs": [first.pk]},
                    {"runs": [first.pk, first.pk]}, {"runs": [1, 2, 3, 4, 5]}, {"runs": "x"}):
        response = api.post("/api/v1/shares/", payload, format="json")
        assert response.status_code == 400 and list(response.json()) == ["runs"], (payload, response.content)
    for payload in ({}, {"run": first.pk, "runs": [first.pk, second.pk]}):
        response = api.post("/api/v1/shares/", payload, format="json")
        assert response.status_code == 400 and "run" in response.json(), payload
    assert not ShareLink.objects.exists()


def test_it_hides_a_comparison_link_from_an_outsider_through_the_api(outsider, link):
    share, _ = link
    api = api_for(outsider)
    assert api.get(f"/api/v1/shares/{share.pk}/").status_code == 404
    assert api.post(f"/api/v1/shares/{share.pk}/revoke/").status_code == 404
    assert api.get("/api/v1/shares/").json()["results"] == []
    share.refresh_from_db()
    assert share.is_active


def test_it_describes_comparison_links_in_the_schema(client):
    schema = client.get("/api/v1/schema/?format=json").json()["components"]["schemas"]
    assert {"kind", "runs", "run"} <= set(schema["ShareLink"]["properties"])
    assert schema["ShareLinkCreateRequest"]["properties"]["runs"]["type"] == "array"


# --- Links inside a shared run's page --------------------------------------------------------------------


def test_it_links_a_shared_stopped_runs_partial_results_to_the_link(owner, two_runs):
    run = two_runs[0]
    Run.objects.filter(pk=run.pk).update(status=Run.Status.STOPPED, partial=True)
    _, token = ShareLink.create_for(run, owner)
    html = Client().get(f"/s/{token}/").content.decode()
    assert f'href="/s/{token}/results/"' in html and owner_urls(html) == [], owner_urls(html)
    results = Client().get(f"/s/{token}/results/").content.decode()
    assert owner_urls(results) == [], owner_urls(results)
