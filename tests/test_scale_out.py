"""Scale-out: two daphne processes (A and B), three RQ workers and a monitor on one database and one Redis, as in
docs/deployment.md. A watcher on A sees runs executed by any worker, exactly seq 1..N; a cancel through B stops
them; kill -9 of a worker fails its run with a reason while the others go on; kill -9 of daphne A loses nothing
for watchers who reconnect to B with ?after=."""

import os
import re
import signal

import httpx
import pytest

from accounts.models import Quota
from runs.models import Run
from tests.cluster import Cluster, Watcher, api, launch, run_field, token_for
from tests.conftest import IRIS_SPEC
from tests.helpers import session_key_for
from tests.runwork import MANY_FITS_SPEC, wait_for_status

pytestmark = pytest.mark.django_db(transaction=True)

# About a hundred short fits: a few seconds alone, long enough that kills land mid-run, short enough to finish.
MEDIUM_SPEC = {
    "dataset": {"kind": "synthetic", "generator": "classification", "n_samples": 1500, "n_features": 10, "seed": 1},
    "task": "classification",
    "models": [{"estimator": "RandomForestClassifier", "params": {"n_estimators": [8], "max_depth": list(range(2, 22))}}],
    "cv": {"kind": "stratified_kfold", "folds": 5, "shuffle": True, "seed": 1},
    "metric": "accuracy",
}


@pytest.fixture
def cluster(transactional_db):
    cluster = Cluster(daphnes=2, workers=3)
    yield cluster
    cluster.stop()


def assert_whole_stream(watcher, run, status):
    run.refresh_from_db()
    assert watcher.seqs == list(range(1, run.last_seq + 1)), (run.pk, watcher.failures)
    assert watcher.end["data"]["status"] == status


def cancel_with_session(server, user, run):
    """What the run page's Stop button does: a session POST with the CSRF token, to daphne B."""
    with httpx.Client(base_url=server.url, cookies={"sessionid": session_key_for(user)}, timeout=30) as client:
        page = client.get(f"/runs/{run.pk}/")
        assert page.status_code == 200
        token = re.search(r'csrfmiddlewaretoken" value="([^"]+)"|"X-CSRFToken": "([^"]+)"', page.text)
        csrf = next(g for g in token.groups() if g)
        answer = client.post(f"/runs/{run.pk}/cancel/", headers={"X-CSRFToken": csrf, "HX-Request": "true"})
    assert answer.status_code == 204, answer.text  # the stream brings the new status


@pytest.mark.system
def test_it_watches_on_a_and_cancels_on_b_runs_of_every_worker(cluster, owner):
    a, b = cluster.daphnes
    Quota.objects.create(user=owner, running=3)  # one run on each worker at once
    runs = [launch(a, owner, MANY_FITS_SPEC, f"Scale {i}") for i in range(3)]
    watchers = [Watcher([a], run.pk, token_for(owner)) for run in runs]
    for watcher in watchers:
        watcher.start()
    for watcher in watchers:
        assert watcher.first_live.wait(120), f"no live fold on A for run {watcher.run_id}: {watcher.failures}"
    # Three runs at once on three workers: each worker executes one of them.
    assert len({cluster.worker_running(run) for run in runs}) == 3

    cancel_with_session(b, owner, runs[0])
    with api(b, owner) as client:
        for run in runs[1:]:
            answer = client.post(f"/runs/{run.pk}/cancel/")
            assert answer.status_code == 200 and answer.json()["status"] in ("cancelling", "stopped"), answer.text

    for run, watcher in zip(runs, watchers):
        wait_for_status(run, Run.Status.STOPPED, timeout=60)
        assert_whole_stream(watcher.result(), run, "stopped")
        assert watcher.connected_to == [a]  # one connection, never dropped: everything came live through A
        assert 0 < run.finished_fits < run.total_fits


@pytest.mark.system
def test_it_survives_kill_9_of_a_worker_and_of_daphne_a(cluster, owner):
    a, b = cluster.daphnes
    Quota.objects.create(user=owner, running=3)  # one run on each worker at once
    runs = [launch(a, owner, MEDIUM_SPEC, f"Survivor {i}") for i in range(3)]
    # Each watcher is on A; when A dies it goes on at B with ?after=.
    watchers = [Watcher([a, b], run.pk, token_for(owner)) for run in runs]
    for watcher in watchers:
        watcher.start()
    for watcher in watchers:
        assert watcher.first_live.wait(120), f"no live fold for run {watcher.run_id}: {watcher.failures}"
    doomed, *others = runs

    victim = cluster.worker_running(doomed)
    os.killpg(victim.pid, signal.SIGKILL)
    # Both kills land while the other runs are still working.
    assert {run_field(run, "status") for run in others} == {Run.Status.RUNNING}
    os.kill(a.pid, signal.SIGKILL)

    doomed = wait_for_status(doomed, Run.Status.FAILED, timeout=90)
    assert doomed.error_message.startswith("Worker lost: no heartbeat for"), doomed.error_message
    for run in others:
        wait_for_status(run, Run.Status.COMPLETED, timeout=180)
    for run, watcher in zip(runs, watchers):
        assert_whole_stream(watcher.result(), run, run.status)
        assert watcher.connected_to[0] is a and watcher.connected_to[-1] is b
    # The surviving workers still take new work.
    later = launch(b, owner, IRIS_SPEC, "After the kills")
    later = wait_for_status(later, Run.Status.COMPLETED, timeout=90)
    assert not later.worker_name.startswith(next(k for k, p in cluster.workers.items() if p is victim) + "-")
