"""runs/{id}/wait/: blocks until the run ends or the timeout passes, without holding a thread."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from rest_framework.authtoken.models import Token

from runs.control import launch_run
from runs.models import Run
from tests.helpers import wait_for


def wait_url(run, timeout):
    return f"/api/v1/runs/{run.pk}/wait/?timeout={timeout}"


@pytest.mark.django_db
def test_it_returns_at_once_with_timeout_zero(api, run):
    response = api.get(wait_url(run, 0))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["id"] == run.pk and response.json()["status"] == "queued"


@pytest.mark.django_db
def test_it_returns_at_once_for_a_finished_run(api, completed_run):
    started = time.monotonic()
    assert api.get(wait_url(completed_run, 30)).json()["status"] == "completed"
    # Had it waited, it would have taken the 30 s it was allowed: the bound is the behaviour's, not a guess.
    assert time.monotonic() - started < 30


@pytest.mark.django_db
@pytest.mark.parametrize("timeout", ["-1", "61", "soon", "nan", "inf", str(10**400)])
def test_it_rejects_bad_timeouts(api, run, timeout):
    response = api.get(wait_url(run, timeout))
    assert response.status_code == 400
    assert "timeout" in response.json()


@pytest.mark.django_db
def test_it_checks_who_is_asking(anon, outsider_api, staff_api, run):
    response = anon.get(wait_url(run, 0))
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    anon.credentials(HTTP_AUTHORIZATION="Token bogus")
    assert anon.get(wait_url(run, 0)).json() == {"detail": "Invalid token."}
    assert outsider_api.get(wait_url(run, 0)).status_code == 404
    assert staff_api.get(wait_url(run, 0)).status_code == 200
    assert staff_api.get("/api/v1/runs/999999/wait/?timeout=0").status_code == 404


@pytest.mark.django_db
def test_it_accepts_the_session(client, owner, run):
    client.force_login(owner)
    assert client.get(wait_url(run, 0)).json()["id"] == run.pk


@pytest.mark.django_db
def test_it_rejects_post(api, run):
    response = api.post(wait_url(run, 0))
    assert response.status_code == 405 and response.json()["detail"]


def live_client(live_api, owner):
    token = Token.objects.get_or_create(user=owner)[0].key
    return httpx.Client(base_url=live_api.url, headers={"Authorization": f"Token {token}"}, timeout=30)


def subscriptions(redis_client):
    return len(redis_client.pubsub_channels())


@pytest.fixture
def slow_recheck_api(transactional_db, live_media, settings):
    """daphne whose wait/ re-reads the run only every 60 s: anything sooner must be the event's doing."""
    from tests.helpers import serve_daphne

    settings.MEDIA_ROOT = live_media
    process = serve_daphne(ready_path="/api/v1/schema/", MEDIA_ROOT=live_media, RUNWATCH_WAIT_RECHECK="60")
    yield process
    process.stop()


def test_it_wakes_up_when_the_run_ends(slow_recheck_api, owner, experiment, redis_client):
    run = launch_run(owner, experiment=experiment)
    client = live_client(slow_recheck_api, owner)
    result = {}
    before = subscriptions(redis_client)

    def wait():
        started = time.monotonic()
        result["response"] = client.get(wait_url(run, 50))
        result["elapsed"] = time.monotonic() - started

    waiter = threading.Thread(target=wait)
    waiter.start()
    wait_for(lambda: subscriptions(redis_client) > before, timeout=20, message="the waiter to subscribe")
    assert waiter.is_alive()
    run.mark_running("test")
    run.mark_completed({"best_score": 1.0})
    waiter.join(timeout=60)
    assert result["response"].json()["status"] == "completed"
    # Its only re-read of the run was at the start, and the next is 60 s away: only the event could end it
    # before its own 50 s timeout.
    assert result["elapsed"] < 50


def test_it_gives_up_after_the_timeout(live_api, owner, experiment):
    run = launch_run(owner, experiment=experiment)
    started = time.monotonic()
    response = live_client(live_api, owner).get(wait_url(run, 1.5))
    elapsed = time.monotonic() - started
    assert response.status_code == 200 and response.json()["status"] == "queued"
    # It waited the whole timeout (and, had it not given up, httpx's 30 s would have raised).
    assert elapsed >= 1.5


def test_it_does_not_hold_a_thread_while_waiting(live_api, owner, experiment, redis_client):
    """Far more waiters than daphne has threads for sync views, and the API still answers at once."""
    run = launch_run(owner, experiment=experiment)
    client = live_client(live_api, owner)
    with ThreadPoolExecutor(max_workers=40) as pool:
        before = subscriptions(redis_client)
        waiters = [pool.submit(client.get, wait_url(run, 30)) for _ in range(40)]
        wait_for(lambda: subscriptions(redis_client) >= before + 40, timeout=25, message="40 waiters to subscribe")
        assert client.get(f"/api/v1/runs/{run.pk}/").status_code == 200
        # A held thread pool would have answered only once the waits had ended (30 s): they are all still open.
        assert not any(w.done() for w in waiters)
        Run.objects.get(pk=run.pk).mark_stopped()
        assert all(w.result().json()["status"] == "stopped" for w in waiters)
