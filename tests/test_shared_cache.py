"""Django's cache lives in Redis, so what it counts holds across processes: the API's login throttle."""

import httpx
import pytest

from tests.helpers import serve_daphne


@pytest.fixture
def two_daphnes(transactional_db):
    # A low rate so the test exhausts it in a few requests; both processes read the same setting.
    servers = [serve_daphne(TOKEN_THROTTLE_RATE="3/min") for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


def try_password(server):
    return httpx.post(
        server.url + "/api/v1/auth/token/", data={"username": "alice", "password": "a guess"}, timeout=30
    ).status_code


@pytest.mark.system
def test_it_shares_the_token_throttle_between_daphne_processes(owner, two_daphnes):
    a, b = two_daphnes

    assert [try_password(a) for _ in range(3)] == [400, 400, 400]  # Wrong password, not yet throttled.

    # A per-process cache would give B its own three tries; the shared one has none left for this client.
    assert try_password(b) == 429
    assert try_password(a) == 429


def test_it_keeps_the_cache_in_the_redis_of_redis_url(settings, redis_client):
    from django.core.cache import cache

    cache.set("probe", "shared", 30)

    assert settings.CACHES["default"]["LOCATION"] == settings.REDIS_URL
    assert any(b"probe" in key for key in redis_client.keys("runwatch:*"))
