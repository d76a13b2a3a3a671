"""Fixtures for the API tests: token clients for the named users, runs in known states, a model bundle."""

import hashlib

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from runs.control import launch_run
from runs.models import Run


@pytest.fixture(autouse=True)
def fresh_throttle():
    # The token endpoint's rate limit counts in the cache, which outlives a test.
    cache.clear()
    yield
    cache.clear()


def client_for(user):
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def anon():
    return APIClient()


@pytest.fixture
def api(owner):
    return client_for(owner)


@pytest.fixture
def outsider_api(outsider):
    return client_for(outsider)


@pytest.fixture
def staff_api(staff):
    return client_for(staff)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture
def run(owner, experiment):
    return launch_run(owner, experiment=experiment)


def complete(run, media, content=b"model bundle bytes"):
    """Give the run a model bundle and finish it, as the engine does."""
    path = media / "runs" / f"run-{run.pk}.joblib"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    Run.objects.filter(pk=run.pk).update(model_file=f"runs/{path.name}",
                                         model_sha256=hashlib.sha256(content).hexdigest(), best_score=0.95)
    run.refresh_from_db()
    run.mark_running("test-worker")
    run.mark_completed({"best_score": 0.95, "metric": "accuracy"})
    run.refresh_from_db()
    return run


@pytest.fixture
def completed_run(run, media):
    return complete(run, media)


@pytest.fixture
def live_media(tmp_path):
    path = tmp_path / "live-media"
    path.mkdir()
    return path


@pytest.fixture
def live_worker(transactional_db, live_media):
    """A real RQ worker writing model bundles where live_api serves them from."""
    from tests.helpers import start_worker

    process = start_worker(MEDIA_ROOT=live_media)
    yield process
    process.stop()


@pytest.fixture
def live_api(transactional_db, live_media, settings):
    """daphne serving config.asgi on the test database, with MEDIA_ROOT shared with this process."""
    from tests.helpers import serve_daphne

    settings.MEDIA_ROOT = live_media
    process = serve_daphne(ready_path="/api/v1/schema/", MEDIA_ROOT=live_media)
    yield process
    process.stop()
