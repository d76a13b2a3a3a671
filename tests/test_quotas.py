"""Issue 31, point 5: per-user quotas (accounts/quotas.py) and fair shares of the workers (runs/worker/scheduling.py).

A launch past the queued quota is refused (409 in the API, a form error on the page); limits above the user's
largest are a field error; runs past the running slots wait, queued, with the reason shown, and a slot that
frees (by an end, a stop, the reaper) hands the next one to the queue, behind other users' runs."""

from datetime import timedelta
from html import unescape

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from rq.job import Job

from accounts.models import Quota
from accounts.quotas import check_storage, quota_for
from datasets.models import Dataset
from runs.worker import monitor, queue
from results import promotion
from runs.control import cancel_run, launch_run
from runs.worker.scheduling import get_queue
from runs.models import Run
from tests.api.conftest import client_for
from tests.helpers import wait_for
from tests.runwork import MANY_FITS_SPEC, status_of, wait_for_fitting, wait_for_status
from tests.test_results_page import completed_run

SLOTS_FULL = "Waiting for a free running slot: 2 of your 2 running slots in use"


def in_rq(run):
    return Job.exists(run.rq_job_id, connection=get_queue().connection)


def rq_order():
    """The run ids in RQ's queue, first to be taken first."""
    by_job = dict(Run.objects.values_list("rq_job_id", "pk"))
    return [by_job[job_id] for job_id in get_queue().job_ids]


@pytest.fixture
def bob(db):
    return User.objects.create_user("bob", "bob@example.org", "bob-password-1")


# --- Refusals ---------------------------------------------------------------------------------------------


def test_it_refuses_a_launch_past_the_queued_quota_with_409(owner, iris_spec, experiment):
    Quota.objects.create(user=owner, queued=2)
    api = client_for(owner)
    first = api.post("/api/v1/runs/", {"spec": iris_spec}, format="json")
    assert first.status_code == 201
    assert api.post("/api/v1/runs/", {"experiment": experiment.pk}, format="json").status_code == 201

    refused = api.post("/api/v1/runs/", {"spec": iris_spec}, format="json")
    assert refused.status_code == 409
    assert refused.json() == {
        "detail": "You already have 2 queued runs, the most your quota allows (2). Wait for some to start or "
                  "stop some you no longer need, or ask staff to raise your quota.",
        "code": "quota_exceeded"}
    assert api.post(f"/api/v1/runs/{first.json()['id']}/rerun/").status_code == 409
    assert Run.objects.count() == 2

    cancel_run(Run.objects.get(pk=first.json()["id"]))  # a stopped run no longer counts
    assert api.post("/api/v1/runs/", {"spec": iris_spec}, format="json").status_code == 201


def test_it_shows_the_quota_refusal_on_the_launch_form(client, owner, experiment):
    Quota.objects.create(user=owner, queued=1)
    client.force_login(owner)
    assert client.post(reverse("runs:launch"), {"experiment": experiment.pk}).status_code == 302

    response = client.post(reverse("runs:launch"), {"experiment": experiment.pk})
    assert response.status_code == 409
    html = unescape(response.content.decode())
    assert 'id="launch-experiment-error" role="alert">You already have 1 queued run, the most your quota allows' in html
    assert Run.objects.count() == 1


def test_it_refuses_the_launch_from_the_experiment_page_and_the_command_line(client, owner, experiment):
    from django.core.management import CommandError, call_command

    Quota.objects.create(user=owner, queued=0)
    client.force_login(owner)
    response = client.post(reverse("experiments:launch", args=[experiment.pk]), follow=True)
    assert "Not launched: Your quota allows no queued runs" in unescape(response.content.decode())
    with pytest.raises(CommandError, match="Not launched: Your quota allows no queued runs"):
        call_command("run_experiment", str(experiment.pk), "--user", owner.username)
    assert not Run.objects.exists()


def test_it_refuses_limits_above_the_users_largest_with_a_field_error(owner, staff, iris_spec, settings):
    settings.RUNWATCH = {**settings.RUNWATCH, "QUOTA_MEMORY_MB": 4096, "QUOTA_TIME_SECONDS": 3600}
    api = client_for(owner)
    iris_spec["limits"] = {"memory_mb": 8192, "time_seconds": 7200}
    response = api.post("/api/v1/runs/", {"spec": iris_spec}, format="json")
    assert response.status_code == 400
    errors = response.json()["spec"]
    assert errors["limits.memory_mb"] == ["Must be a whole number of megabytes between 256 and 4096, the most your "
                                          "quota allows (ask staff to raise your quota for more)."]
    assert errors["limits.time_seconds"][0].startswith("Must be a whole number of seconds between 1 and 3600, the "
                                                       "most your quota allows")
    assert not Run.objects.exists()

    Quota.objects.create(user=owner, memory_mb=8192, time_seconds=7200)  # staff raised it
    assert api.post("/api/v1/runs/", {"spec": iris_spec}, format="json").status_code == 201
    # Never past the server's ceiling, whatever the quota says.
    Quota.objects.filter(user=owner).update(memory_mb=10**6)
    iris_spec["limits"] = {"memory_mb": 10**6}
    errors = api.post("/api/v1/runs/", {"spec": iris_spec}, format="json").json()["spec"]
    assert errors["limits.memory_mb"][0].endswith("and 16384, the ceiling on this server.")


def test_it_gives_everyone_the_defaults_until_staff_set_a_quota(owner, settings):
    settings.RUNWATCH = {**settings.RUNWATCH, "QUOTA_RUNNING": 3, "QUOTA_STORAGE_MB": 10}
    assert (quota_for(owner).running, quota_for(owner).storage_bytes) == (3, 10 * 1024 * 1024)
    Quota.objects.create(user=owner, running=5)  # the empty fields still follow the settings
    assert (quota_for(owner).running, quota_for(owner).storage_mb) == (5, 10)


def test_it_refuses_storage_past_the_quota(owner, settings, tmp_path, iris_spec):
    settings.MEDIA_ROOT = tmp_path
    Quota.objects.create(user=owner, storage_mb=1)
    Dataset.objects.create(owner=owner, name="big", size_bytes=924 * 1024)
    check_storage(owner, 100 * 1024)  # exactly 1 MB in all: allowed
    with pytest.raises(ValidationError) as refused:
        check_storage(owner, 100 * 1024 + 1)
    assert refused.value.code == "storage_quota"
    assert refused.value.messages[0].startswith("Not enough storage left: this needs 0.1 MB, and your datasets "
                                                "and models already use 0.9 MB of your 1.0 MB.")

    run = completed_run(owner, tmp_path, iris_spec)
    Dataset.objects.filter(owner=owner).update(size_bytes=1024 * 1024)
    response = client_for(owner).post(f"/api/v1/runs/{run.pk}/promote/", {"name": "iris"}, format="json")
    assert response.status_code == 409 and response.json()["detail"].startswith("Not enough storage left")
    with pytest.raises(promotion.OverQuota):
        promotion.promote(run, owner, "iris")
    assert not owner.registered_models.exists()
    assert not [path for path in tmp_path.glob("models/**/*") if path.is_file()]  # no copy left behind


def test_it_lets_staff_set_a_quota_in_the_admin(client, staff, owner):
    client.force_login(staff)
    url = reverse("admin:auth_user_change", args=[owner.pk])
    page = client.get(url)
    assert page.status_code == 200
    html = unescape(page.content.decode())
    assert "Runs running at once" in html and "In effect (default)" in html

    joined = timezone.localtime(owner.date_joined)
    response = client.post(url, {
        "username": owner.username, "email": owner.email, "is_active": "on",
        "date_joined_0": joined.strftime("%Y-%m-%d"), "date_joined_1": joined.strftime("%H:%M:%S"),
        "quota-TOTAL_FORMS": "1", "quota-INITIAL_FORMS": "0", "quota-MIN_NUM_FORMS": "0", "quota-MAX_NUM_FORMS": "1",
        "quota-0-running": "4", "quota-0-queued": "50", "quota-0-memory_mb": "", "quota-0-time_seconds": "",
        "quota-0-storage_mb": "20480", "quota-0-user": str(owner.pk),
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    quota = Quota.objects.get(user=owner)
    assert (quota.running, quota.queued, quota.memory_mb, quota.storage_mb) == (4, 50, None, 20480)
    assert quota_for(owner).running == 4


# --- Waiting for a slot -----------------------------------------------------------------------------------


def test_it_keeps_runs_past_the_running_slots_waiting_and_says_why(transactional_db, client, owner, experiment):
    first, second, third = (launch_run(owner, experiment=experiment) for _ in range(3))
    assert [in_rq(run) for run in (first, second, third)] == [True, True, False]
    assert (third.status, third.waiting_for_slot) == (Run.Status.QUEUED, True)
    assert queue.waiting_reason(third) == SLOTS_FULL
    assert client_for(owner).get(f"/api/v1/runs/{third.pk}/").json()["waiting_reason"] == SLOTS_FULL
    client.force_login(owner)
    listed = unescape(client.get(reverse("runs:list")).content.decode())
    row = listed.split(f'id="run-row-{third.pk}"')[1].split("</tr>")[0]
    assert f'<div class="muted small run-waiting">{SLOTS_FULL}</div>' in row
    assert "in queue" not in row  # it is in no queue yet

    cancel_run(first)  # a slot frees: the waiting run goes to the queue, and its log says so
    third.refresh_from_db()
    assert not third.waiting_for_slot and in_rq(third)
    assert third.logs.filter(message="A running slot is free: the run is in the workers' queue.").exists()
    assert queue.waiting_reason(third).startswith("No worker is running")


def test_it_stops_a_waiting_run_at_once(transactional_db, owner, experiment):
    Quota.objects.create(user=owner, running=1)
    running, waiting = launch_run(owner, experiment=experiment), launch_run(owner, experiment=experiment)
    stopped = cancel_run(waiting)
    assert (stopped.status, stopped.message) == (Run.Status.STOPPED, "Cancelled before it started")
    assert not in_rq(stopped)
    assert queue.waiting_reason(stopped) is None
    assert in_rq(running) and status_of(running) == Run.Status.QUEUED


def test_it_queues_each_users_runs_behind_the_others_first(transactional_db, owner, bob, experiment, iris_spec):
    alice_runs = [launch_run(owner, experiment=experiment) for _ in range(20)]
    bobs = launch_run(bob, spec=iris_spec)
    # Alice's two slots are in the queue, then Bob's first; her other eighteen wait for her slots.
    assert rq_order() == [alice_runs[0].pk, alice_runs[1].pk, bobs.pk]

    get_queue().remove(alice_runs[0].rq_job_id)  # a worker took it, ran it, and it ended
    alice_runs[0].mark_running("w")
    alice_runs[0].mark_completed({})
    assert rq_order() == [alice_runs[1].pk, bobs.pk, alice_runs[2].pk]


def test_it_starts_the_other_users_first_run_next(worker, owner, bob, experiment, iris_spec):
    """One worker, and Alice (one running slot) has 20 runs queued: Bob's first run is the next to start."""
    Quota.objects.create(user=owner, running=1)
    busy = launch_run(owner, spec=MANY_FITS_SPEC, name="Alice busy")
    wait_for_fitting(busy)
    alice_runs = [busy] + [launch_run(owner, experiment=experiment) for _ in range(19)]
    assert Run.objects.filter(owner=owner, status=Run.Status.QUEUED).count() == 19
    bobs = launch_run(bob, spec=iris_spec, name="Bob's first")

    cancel_run(busy)
    bobs = wait_for_status(bobs, Run.Status.COMPLETED, timeout=120)
    second = Run.objects.get(pk=alice_runs[1].pk)
    assert second.started_at is None or second.started_at > bobs.started_at
    assert not Run.objects.filter(pk__in=[r.pk for r in alice_runs[2:]], started_at__isnull=False).exists()
    for run in alice_runs:
        if Run.objects.get(pk=run.pk).is_active:
            cancel_run(run)
    wait_for(lambda: not Run.objects.filter(status__in=Run.ACTIVE).exists(), timeout=60, message="runs to end")


# --- Whatever ends a run frees its slot ------------------------------------------------------------------


def test_it_releases_the_next_run_when_the_reaper_fails_a_lost_one(transactional_db, owner, experiment):
    Quota.objects.create(user=owner, running=1)
    lost, waiting = launch_run(owner, experiment=experiment), launch_run(owner, experiment=experiment)
    lost.mark_running("gone")
    Run.objects.filter(pk=lost.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))

    assert monitor.reap_lost_workers() == 1
    assert status_of(lost) == Run.Status.FAILED
    waiting.refresh_from_db()
    assert not waiting.waiting_for_slot and in_rq(waiting)


def test_the_monitor_releases_a_run_whose_release_was_lost(transactional_db, owner, experiment):
    Quota.objects.create(user=owner, running=1)
    ended, waiting = launch_run(owner, experiment=experiment), launch_run(owner, experiment=experiment)
    # The process that ended the run died before it could release the next one.
    Run.objects.filter(pk=ended.pk).update(status=Run.Status.FAILED)
    assert monitor.reap_lost_queued() == 0  # a waiting run has no job by design: not "lost"
    assert monitor.release_waiting() == 1
    waiting.refresh_from_db()
    assert not waiting.waiting_for_slot and in_rq(waiting)
    assert monitor.release_waiting() == 0


def test_it_refuses_an_upload_past_the_storage_quota_on_the_page_and_in_the_api(client, owner):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from rest_framework.test import APIClient

    from datasets.models import Dataset

    Quota.objects.update_or_create(user=owner, defaults={"storage_mb": 0})
    csv = "a,b,label\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(40))
    client.force_login(owner)
    page = client.post("/datasets/upload/", {"file": SimpleUploadedFile("d.csv", csv.encode())})
    api = APIClient()
    api.force_authenticate(owner)
    answer = api.post("/api/v1/datasets/", {"file": SimpleUploadedFile("d.csv", csv.encode())}, format="multipart")
    assert answer.status_code == 400
    assert answer.json()["file"][0].startswith("Not enough storage left")
    assert "Not enough storage left" in page.content.decode()
    assert not Dataset.objects.exists()
