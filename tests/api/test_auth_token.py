"""POST /api/v1/auth/token/: a username and password for a token, rate limited."""

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db
URL = "/api/v1/auth/token/"


def test_it_returns_the_users_token(anon, owner):
    response = anon.post(URL, {"username": "alice", "password": "alice-password-1"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"token": Token.objects.get(user=owner).key}
    # The same token every time, and it authenticates.
    again = anon.post(URL, {"username": "alice", "password": "alice-password-1"})
    assert again.json()["token"] == response.json()["token"]
    anon.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert anon.get("/api/v1/runs/").status_code == 200


def test_it_rejects_a_wrong_password(anon, owner):
    response = anon.post(URL, {"username": "alice", "password": "nope"}, format="json")
    assert response.status_code == 400
    assert "non_field_errors" in response.json()
    assert not Token.objects.exists()


def test_it_reports_missing_fields(anon):
    response = anon.post(URL, {}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"username", "password"}


def test_it_rejects_malformed_json(anon):
    response = anon.post(URL, '{"username": ', content_type="application/json")
    assert response.status_code == 400
    assert "detail" in response.json()


def test_it_does_not_need_csrf_for_a_logged_in_browser(owner):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post(URL, {"username": "alice", "password": "alice-password-1"}, format="json")
    assert response.status_code == 200


def test_it_rejects_get(anon):
    assert anon.get(URL).status_code == 405


def test_it_throttles_token_requests(anon, owner):
    # Requests that are not failed logins (those are the login throttle's, tests/test_login_throttle.py).
    allowed = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["token"].split("/")[0])
    for _ in range(allowed):
        assert anon.post(URL, {"username": "alice"}, format="json").status_code == 400
    response = anon.post(URL, {"username": "alice", "password": "alice-password-1"}, format="json")
    assert response.status_code == 429
    assert "detail" in response.json()
    assert int(response["Retry-After"]) > 0
