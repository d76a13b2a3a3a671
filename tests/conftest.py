import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.test import override_settings

from experiments.models import Experiment
from tests.helpers import serve_daphne, start_monitor, start_worker

pytest_plugins = ["tests.tiers"]

IRIS_SPEC = {
    "dataset": {"kind": "builtin", "name": "iris"},
    "task": "classification",
    "models": [{"estimator": "LogisticRegression", "params": {"C": [0.1, 1.0], "max_iter": [500]}}],
    "cv": {"kind": "stratified_kfold", "folds": 3, "shuffle": True, "seed": 1},
    "metric": "accuracy",
}


@pytest.fixture(scope="session")
def redis_client():
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as e:
        pytest.fail(f"Redis is not reachable at {settings.REDIS_URL} ({e}). `make test` starts a private one.")
    return client


@pytest.fixture(scope="session", autouse=True)
def fresh_media(tmp_path_factory):
    # Stored files are named by run id (models/run-<id>/...), and ids start again with each test database:
    # files a run left in a reused folder would make the storage rename the next run's. Each session (each
    # xdist worker) stores into a folder of its own, never the `make run` one; the processes tests start are
    # handed it (tests.helpers.child_env). override_settings also resets the default storage's location.
    with override_settings(MEDIA_ROOT=tmp_path_factory.mktemp("media")):
        yield


@pytest.fixture(autouse=True)
def one_fit_at_a_time(settings):
    # Runs executed in this process fit one model at a time unless their spec asks for n_jobs, as the
    # workers the tests start do (tests.helpers.child_env): most tests follow one fit after another.
    settings.RUNWATCH = {**settings.RUNWATCH, "N_JOBS_DEFAULT": 1}


@pytest.fixture(autouse=True)
def clean_redis(request):
    # The tests own this Redis database (REDIS_URL points at a number nothing else uses). A unit test
    # touches no Redis, so it does not wait for one (tests/tiers.py).
    if request.node.get_closest_marker("unit") is None:
        request.getfixturevalue("redis_client").flushdb()


@pytest.fixture
def owner(db):
    return User.objects.create_user("alice", "alice@example.org", "alice-password-1")


@pytest.fixture
def outsider(db):
    return User.objects.create_user("mallory", "mallory@example.org", "mallory-password-1")


@pytest.fixture
def staff(db):
    return User.objects.create_user("sam", "sam@example.org", "sam-password-1", is_staff=True, is_superuser=True)


@pytest.fixture
def iris_spec():
    import copy

    return copy.deepcopy(IRIS_SPEC)


@pytest.fixture
def experiment(owner, iris_spec):
    return Experiment.objects.create(owner=owner, name="Iris baseline", spec=iris_spec)


@pytest.fixture
def worker(transactional_db):
    """A real RQ worker process (RunwatchWorker) on the test database and Redis."""
    process = start_worker()
    yield process
    process.stop()


@pytest.fixture
def monitor(transactional_db):
    process = start_monitor()
    yield process
    process.stop()


@pytest.fixture
def daphne_server(transactional_db):
    """daphne serving config.asgi on a free port; `.url` is its base URL."""
    process = serve_daphne()
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def websocket_database_threads_closed_at_the_end(request):
    # Only a test that has a database needs it; a unit-only session never creates one.
    if "django_db_setup" in request.fixturenames or request.node.get_closest_marker("django_db"):
        request.getfixturevalue("close_websocket_database_threads")


@pytest.fixture(scope="session")
def close_websocket_database_threads(django_db_setup, django_db_blocker):
    # In-process WebSocket tests leave live.wsdb threads holding connections; PostgreSQL will not drop the
    # test database while they are open.
    yield
    from live import wsdb

    with django_db_blocker.unblock():
        wsdb.shutdown()
