"""CSRF on every route: a logged-in owner's browser session cannot be made to POST (or PUT, PATCH, DELETE)
from another site, on any route the URL configuration has, pages and API alike (DRF's SessionAuthentication).
An API client with a token sends no cookie, so it needs no CSRF token.

Each refusal must be the CSRF check's own (its message), not some other 403, so a route that refuses for
another reason does not hide a missing check.
"""

import pytest
from django.test import Client

from experiments.models import RegisteredModel
from runs.models import Run
from tests.security_world import build_world
from tests.test_security_sweep import all_routes

pytestmark = pytest.mark.django_db

UNSAFE = ("post", "put", "patch", "delete")

# Routes that take unsafe requests without a CSRF token, each with why that is safe.
EXEMPT = {
    "api/v1/auth/token/": "trades a username and password for a token; it reads no session, so a forged request "
                          "gains nothing the attacker did not already send",
    "api/v1/(?P<path>.*)": "the API's JSON 404 for unknown paths; it does nothing",
}

CSRF_REFUSALS = ("CSRF verification failed", "CSRF Failed")


@pytest.fixture
def world(owner, settings, tmp_path, iris_spec):
    settings.MEDIA_ROOT = tmp_path
    return build_world(owner, tmp_path, iris_spec)


@pytest.fixture
def browser(world):
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(world.owner)
    return client


def test_it_refuses_every_unsafe_request_without_a_csrf_token(world, browser, owner):
    # The same session without the CSRF check, to tell a CSRF refusal without its message (DRF's HTML
    # renderer on the Swagger page prints a bare "403 Forbidden") from a route that refuses for another reason.
    unchecked = Client(raise_request_exception=False)
    unchecked.force_login(owner)
    problems = []
    routes = all_routes(world)
    for route, url in routes:
        if route.route in EXEMPT:
            continue
        for method in UNSAFE:
            response = getattr(browser, method)(url, **({"data": {"name": "forged"}} if method == "post" else {}))
            body = response.content.decode("utf-8", "replace") if not response.streaming else ""
            if response.status_code == 403 and not any(text in body for text in CSRF_REFUSALS):
                # Only safe to probe where the unchecked request changes nothing: a GET-only route (405).
                if getattr(unchecked, method)(url).status_code == 405:
                    continue
            if response.status_code != 403 or not any(text in body for text in CSRF_REFUSALS):
                problems.append(f"{method.upper()} {url} ({route.route!r}) answered {response.status_code} "
                                f"without the CSRF refusal")
    assert not problems, f"{len(problems)} unsafe requests were not refused for CSRF:\n" + "\n".join(problems)
    assert len(routes) > 100
    world.run.refresh_from_db()
    assert world.run.status == Run.Status.COMPLETED and not RegisteredModel.objects.exclude(pk=world.model.pk).exists()


def test_it_accepts_the_same_requests_with_the_token(world, browser):
    # The refusals above are the CSRF check's: with the page's token the same session may act.
    browser.get(f"/runs/{world.run.pk}/results/")  # sets the CSRF cookie, as the page does
    token = browser.cookies["csrftoken"].value
    response = browser.post(f"/runs/{world.run.pk}/promote/", {"name": "promoted", "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and RegisteredModel.objects.filter(name="promoted").exists()
    response = browser.post(f"/api/v1/runs/{world.run.pk}/rerun/", "{}", content_type="application/json",
                            headers={"X-CSRFToken": token})
    assert response.status_code == 201, response.content
    assert browser.post("/logout/", {"csrfmiddlewaretoken": token}).status_code == 302


def test_it_does_not_ask_token_clients_for_a_csrf_token(world):
    client = Client(enforce_csrf_checks=True)
    auth = {"Authorization": f"Token {world.token.key}"}
    response = client.post(f"/api/v1/runs/{world.run.pk}/rerun/", "{}", content_type="application/json", headers=auth)
    assert response.status_code == 201, response.content
    assert Run.objects.filter(rerun_of=world.run).count() == 1
    # ... while the same request riding on a session cookie is refused.
    session = Client(enforce_csrf_checks=True)
    session.force_login(world.owner)
    response = session.post(f"/api/v1/runs/{world.run.pk}/rerun/", "{}", content_type="application/json")
    assert response.status_code == 403 and "CSRF Failed" in response.json()["detail"]
    assert Run.objects.filter(rerun_of=world.run).count() == 1
