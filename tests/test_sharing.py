"""Share links over HTTP: the read-only pages a link opens, its refusals (revoked, expired, guessed), the
owner's list and Revoke, the miss throttle, and the API (tests/test_sharing_stream.py: the WebSocket)."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from experiments.models import RegisteredModel
from runs.models import Run
from sharing.models import ShareLink, token_hash
from tests.test_results_page import completed_run, media  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

GUESSED = "x" * 43


@pytest.fixture
def run(owner, media, iris_spec):  # noqa: F811
    return completed_run(owner, media, iris_spec, name="Shared iris")


@pytest.fixture
def link(run, owner):
    return ShareLink.create_for(run, owner)


@pytest.fixture
def anonymous_viewer():
    return Client()


def test_it_stores_only_a_hash_of_a_long_random_token(link):
    share, token = link
    assert len(token) >= 43 and share.token_hash == token_hash(token) and token not in share.token_hash


def test_it_shows_the_run_page_read_only(anonymous_viewer, link, run):
    share, token = link
    response = anonymous_viewer.get(f"/s/{token}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Shared iris" in html and f"/ws/share/{token}/fragments/" not in html  # completed: no socket
    for absent in ("stop-form", f"/runs/{run.pk}/model/", "All runs", "share-form", f"/runs/{run.pk}/results/"):
        assert absent not in html, absent
    assert f"/s/{token}/results/" in html
    share.refresh_from_db()
    assert share.last_used_at is not None


def test_it_shows_a_live_run_with_the_share_socket(anonymous_viewer, owner, experiment):
    from runs.control import launch_run

    live_run = launch_run(owner, experiment=experiment)
    live_run.mark_running("w1")
    _, token = ShareLink.create_for(live_run, owner)
    html = anonymous_viewer.get(f"/s/{token}/").content.decode()
    assert f'ws-connect="/ws/share/{token}/fragments/?after=' in html and 'data-share="1"' in html
    assert "stop-form" not in html and f"/runs/{live_run.pk}/" not in html
    assert anonymous_viewer.get(f"/s/{token}/live/").status_code == 200


def test_it_shows_the_results_read_only(anonymous_viewer, link, run):
    _, token = link
    response = anonymous_viewer.get(f"/s/{token}/results/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Leaderboard" in html
    for absent in ("rerun-btn", "promote-btn", "export-model", "clone-link", f"/runs/{run.pk}/"):
        assert absent not in html, absent


@pytest.mark.parametrize("suffix", ["", "results/", "live/"])
def test_it_answers_404_for_revoked_expired_and_guessed_links(anonymous_viewer, run, owner, suffix):
    revoked, revoked_token = ShareLink.create_for(run, owner)
    revoked.revoke()
    expired, expired_token = ShareLink.create_for(run, owner)
    ShareLink.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    missing = anonymous_viewer.get(f"/s/{GUESSED}/{suffix}")
    assert missing.status_code == 404
    for token in (revoked_token, expired_token):
        response = anonymous_viewer.get(f"/s/{token}/{suffix}")
        assert (response.status_code, response.content) == (404, missing.content)


def test_it_refuses_every_action_through_a_link(anonymous_viewer, link, run):
    _, token = link
    for url in (f"/runs/{run.pk}/cancel/", f"/runs/{run.pk}/rerun/", f"/runs/{run.pk}/promote/"):
        response = anonymous_viewer.post(url, {"name": "stolen"})
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url
    for url in (f"/runs/{run.pk}/model/", f"/runs/{run.pk}/", f"/runs/{run.pk}/results/", f"/s/{token}/model/"):
        response = anonymous_viewer.get(url)
        assert response.status_code in (302, 404), url
    run.refresh_from_db()
    assert Run.objects.count() == 1 and run.status == Run.Status.COMPLETED  # no re-run, no stop
    assert not RegisteredModel.objects.exists()  # no promotion


def test_it_throttles_guessed_tokens_and_then_refuses_even_a_right_one(anonymous_viewer, link, settings):
    settings.RUNWATCH = {**settings.RUNWATCH, "SHARE_MISS_RATE": "3/min"}
    _, token = link
    assert anonymous_viewer.get(f"/s/{token}/").status_code == 200  # a hit is never counted
    assert [anonymous_viewer.get(f"/s/{GUESSED}{i}/").status_code for i in range(3)] == [404, 404, 404]
    assert anonymous_viewer.get(f"/s/{GUESSED}/").status_code == 429
    blocked = anonymous_viewer.get(f"/s/{token}/")
    assert blocked.status_code == 429 and blocked["Retry-After"] == "60"
    other_address = Client(REMOTE_ADDR="198.51.100.7")
    assert other_address.get(f"/s/{token}/").status_code == 200


def test_it_lets_the_owner_share_from_the_run_page(client, owner, run):
    client.force_login(owner)
    assert 'id="share-form"' in client.get(f"/runs/{run.pk}/").content.decode()
    response = client.post(reverse("sharing:share", args=[run.pk]))
    assert response.status_code == 201
    url = response.context["url"]
    assert "/s/" in url and ShareLink.objects.filter(run=run).count() == 1
    assert Client().get(url.split("testserver", 1)[1]).status_code == 200


def test_it_refuses_an_expiry_in_the_past_on_the_form(client, owner, run):
    client.force_login(owner)
    past = (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(reverse("sharing:share", args=[run.pk]), {"expires_at": past})
    assert response.status_code == 400 and "expires_at" in response.context["form"].errors
    assert not ShareLink.objects.exists()


def test_it_lists_and_revokes_the_owners_links(client, owner, link, run):
    share, token = link
    client.force_login(owner)
    listing = client.get(reverse("sharing:links")).content.decode()
    assert f"share-link-{share.pk}" in listing and token not in listing
    response = client.post(reverse("sharing:revoke", args=[share.pk]))
    assert response.status_code == 302
    assert f"share-link-{share.pk}" not in client.get(reverse("sharing:links")).content.decode()
    assert Client().get(f"/s/{token}/").status_code == 404


def test_it_refuses_an_outsider_sharing_or_revoking_the_owners_run(client, outsider, link, run):
    share, token = link
    client.force_login(outsider)
    assert client.post(reverse("sharing:share", args=[run.pk])).status_code == 404
    assert client.post(reverse("sharing:revoke", args=[share.pk])).status_code == 404
    assert f"share-link-{share.pk}" not in client.get(reverse("sharing:links")).content.decode()
    share.refresh_from_db()
    assert share.is_active and ShareLink.objects.count() == 1


def test_it_lets_staff_revoke_in_the_admin(client, staff, link):
    share, token = link
    client.force_login(staff)
    changelist = reverse("admin:sharing_sharelink_changelist")
    assert f"Share link #{share.pk}" in client.get(changelist).content.decode()
    client.post(changelist, {"action": "revoke", "_selected_action": [share.pk]})
    share.refresh_from_db()
    assert share.revoked_at is not None and Client().get(f"/s/{token}/").status_code == 404


# --- The API --------------------------------------------------------------------------------------------


def api_for(user):
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_it_creates_lists_and_revokes_links_through_the_api(owner, run):
    api = api_for(owner)
    created = api.post("/api/v1/shares/", {"run": run.pk}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "active" and body["url"].endswith(f"/s/{body['token']}/")
    listed = api.get("/api/v1/shares/").json()["results"]
    assert [row["id"] for row in listed] == [body["id"]] and "token" not in listed[0]
    revoked = api.post(f"/api/v1/shares/{body['id']}/revoke/")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert Client().get(f"/s/{body['token']}/").status_code == 404


def test_it_refuses_a_past_expiry_through_the_api(owner, run):
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    response = api_for(owner).post("/api/v1/shares/", {"run": run.pk, "expires_at": past}, format="json")
    assert response.status_code == 400 and "expires_at" in response.json()
    future = (timezone.now() + timedelta(days=1)).isoformat()
    response = api_for(owner).post("/api/v1/shares/", {"run": run.pk, "expires_at": future}, format="json")
    assert response.status_code == 201


def test_it_refuses_an_outsider_through_the_api(outsider, link, run):
    share, _ = link
    api = api_for(outsider)
    response = api.post("/api/v1/shares/", {"run": run.pk}, format="json")
    assert response.status_code == 400 and "run" in response.json()
    assert api.post(f"/api/v1/shares/{share.pk}/revoke/").status_code == 404
    assert api.get(f"/api/v1/shares/{share.pk}/").status_code == 404
    assert api.get("/api/v1/shares/").json()["results"] == []
    share.refresh_from_db()
    assert share.is_active


def test_it_describes_the_share_api_in_the_schema(client):
    schema = client.get("/api/v1/schema/?format=json").json()
    assert "/api/v1/shares/" in schema["paths"] and "/api/v1/shares/{id}/revoke/" in schema["paths"]
    created = schema["components"]["schemas"]["CreatedShareLink"]["properties"]
    assert {"token", "url", "expires_at", "last_used_at", "status"} <= set(created)
    assert "expires_at" in schema["components"]["schemas"]["ShareLinkCreateRequest"]["properties"]
