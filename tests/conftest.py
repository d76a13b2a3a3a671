import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User

from experiments.models import Experiment
from tests.helpers import SharedProcesses, serve_daphne, start_monitor, start_worker

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
        client = request.getfixturevalue("redis_client")
        if SharedProcesses.current is not None:
            SharedProcesses.current.keep_registrations(client)
        else:
            client.flushdb()


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


@pytest.fixture(scope="session")
def shared_processes(django_db_setup):
    processes = SharedProcesses()
    yield processes
    processes.stop_all()


def own_processes(request):
    # A test that reads a process's log, counts its children or kills it by pid needs one nobody else used.
    return request.node.get_closest_marker("own_processes") is not None


def _shared(kind, request, shared_processes):
    process = shared_processes.get(kind)
    yield process
    from runs.models import Run

    # The database is flushed next: a run still active would have the shared worker write to rows that are
    # gone, and the next test find it busy. Such a test's processes are not passed on.
    if kind != "daphne" and Run.objects.filter(status__in=Run.ACTIVE).exists():
        shared_processes.retire("worker")
        shared_processes.retire("monitor")


@pytest.fixture
def worker(transactional_db, request, shared_processes):
    """A real RQ worker process (RunwatchWorker) on the test database and Redis; the session's shared one
    unless the test is marked `own_processes`."""
    if own_processes(request):
        process = start_worker()
        yield process
        process.stop()
    else:
        yield from _shared("worker", request, shared_processes)


@pytest.fixture
def monitor(transactional_db, request, shared_processes):
    if own_processes(request):
        process = start_monitor()
        yield process
        process.stop()
    else:
        yield from _shared("monitor", request, shared_processes)


@pytest.fixture
def daphne_server(transactional_db, request, shared_processes):
    """daphne serving config.asgi on a free port; `.url` is its base URL."""
    if own_processes(request):
        process = serve_daphne()
        yield process
        process.stop()
    else:
        yield from _shared("daphne", request, shared_processes)


@pytest.fixture(autouse=True)
def websocket_database_threads_closed_at_the_end(request):
    # Only a test that has a database needs it; a unit-only session never creates one.
    if "django_db_setup" in request.fixturenames or request.node.get_closest_marker("django_db"):
        request.getfixturevalue("close_websocket_database_threads")


@pytest.fixture(scope="session")
def close_websocket_database_threads(django_db_setup, django_db_blocker):
    # In-process WebSocket tests leave runs.wsdb threads holding connections; PostgreSQL will not drop the
    # test database while they are open.
    yield
    from runs import wsdb

    with django_db_blocker.unblock():
        wsdb.shutdown()
