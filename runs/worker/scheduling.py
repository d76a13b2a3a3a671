"""Fair shares of the workers: each user has a few running slots, and runs beyond them wait in the database.

    admit(owner)                 in a launch's transaction: lock the owner, refuse a launch past the queued quota
    release_waiting(owner_id)    hand the owner's oldest waiting runs to RQ while they have free slots
    slot_reason(owner_id)        "Waiting for a free running slot: 2 of your 2 running slots in use"

A run is handed to RQ (released) only while its owner has a free running slot (accounts.quotas); until then it
is Queued with no job (Run.waiting_for_slot), and its page and row say why. A slot is held from release to the
run's end: a released run waiting in RQ holds one as much as a running one. When a run ends, however it ends,
Run.transition calls release_waiting for its owner after the commit, and the monitor does so every round as a
safety net (a process that died between the two). Fairness between users follows from RQ being first in,
first out: it never holds more than a few runs of one user, so one user's fiftieth run is released behind
another user's first, not ahead of it.

Race-free by one lock: every count and every release of a user's runs happens under the lock of the user's
row (select_for_update), so two launches or two ends at once cannot both take the last slot or the last queued
place. Runs are locked after their owner, never before (a run's end releases only after it has committed).
"""

import logging

import django_rq
from django.db import transaction
from django.db.models import Q
from django.dispatch import receiver
from django.utils import timezone
from rq import Callback

from accounts.quotas import ASK_STAFF, QuotaExceeded, lock_user, quota_for

from . import limits
from ..models import Run, slot_freed

log = logging.getLogger(__name__)

# Runs holding a running slot: released to RQ and not ended.
HOLDING_SLOT = Q(status__in=[Run.Status.RUNNING, Run.Status.CANCELLING]) | Q(
    status=Run.Status.QUEUED, waiting_for_slot=False)
WAITING = Q(status=Run.Status.QUEUED, waiting_for_slot=True)
RELEASED_MESSAGE = "Waiting for a worker"
WAITING_MESSAGE = "Waiting for a free running slot"


def slots_in_use(owner_id):
    return Run.objects.filter(HOLDING_SLOT, owner_id=owner_id).count()


def _plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def admit(owner):
    """Lock the owner and raise QuotaExceeded if they may queue no more runs. Call inside the transaction
    that creates the run, so the count and the new run commit together."""
    lock_user(owner.pk)
    allowed = quota_for(owner).queued
    queued = Run.objects.filter(owner_id=owner.pk, status=Run.Status.QUEUED).count()
    if queued >= allowed:
        if allowed == 0:
            raise QuotaExceeded(f"Your quota allows no queued runs, so you cannot launch runs; {ASK_STAFF}.")
        raise QuotaExceeded(
            f"You already have {_plural(queued, 'queued run')}, the most your quota allows ({allowed}). Wait for "
            f"some to start or stop some you no longer need, or {ASK_STAFF}.")


@receiver(slot_freed)
def _on_slot_freed(sender, owner_id, **kwargs):
    release_waiting(owner_id)


def release_waiting(owner_id, *, quiet=()):
    """Release the owner's oldest waiting runs into RQ, as many as they have free slots; returns them.

    Each released run gets a log line saying so (its event re-renders its row and page), except the runs in
    `quiet`: a run released by its own launch has nothing to announce yet."""
    with transaction.atomic():
        lock_user(owner_id)
        free = quota_for(owner_id).running - slots_in_use(owner_id)
        if free <= 0:
            return []
        # Locked in turn: a Stop of one of them waits, or has stopped it first and it is not picked.
        runs = list(Run.objects.select_for_update().filter(WAITING, owner_id=owner_id)
                    .order_by("queued_at", "id")[:free])
        now = timezone.now()
        for run in runs:
            Run.objects.filter(pk=run.pk).update(waiting_for_slot=False, released_at=now, message=RELEASED_MESSAGE,
                                                 updated_at=now)
            run.waiting_for_slot, run.released_at, run.message = False, now, RELEASED_MESSAGE
            if run.pk not in quiet:
                run.log("info", "A running slot is free: the run is in the workers' queue.")
            # Robust: Redis down leaves a released run without a job, which the monitor fails (reap_lost_queued)
            # rather than the launch or the end of another run failing here.
            transaction.on_commit(lambda run=run: enqueue(run), robust=True)
    if runs:
        log.info("Released runs %s of user %s", [run.pk for run in runs], owner_id)
    return runs


def release_all():
    """Release waiting runs of every user with free slots (the monitor's safety net); returns how many."""
    owners = Run.objects.filter(WAITING).values_list("owner_id", flat=True).distinct()
    return sum(len(release_waiting(owner_id)) for owner_id in list(owners))


def slot_reason(owner_id, cache=None):
    """Why a waiting run has not been released; `cache` (a dict) shares the counts between a page's rows."""
    if cache is not None and owner_id in cache:
        return cache[owner_id]
    used, allowed = slots_in_use(owner_id), quota_for(owner_id).running
    reason = f"{WAITING_MESSAGE}: {used} of your {_plural(allowed, 'running slot')} in use"
    if used < allowed:  # a slot has just freed; the release is a moment away
        reason = f"{WAITING_MESSAGE}: one has just freed, and it goes to the workers' queue next"
    if cache is not None:
        cache[owner_id] = reason
    return reason


def get_queue():
    # launch_run already enqueues from transaction.on_commit, so django-rq's own deferral would only add a
    # second, surprising one (a job enqueued inside an outer atomic block would silently wait for it).
    return django_rq.get_queue("default", commit_mode="auto")


def enqueue(run):
    get_queue().enqueue(
        "runs.jobs.execute_run",
        run.pk,
        job_id=run.rq_job_id,
        # The work horse ends a run at its time limit (runs.worker.limits); RQ's timeout is only the backstop.
        job_timeout=limits.job_timeout(run.spec),
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        # RQ calls this in the worker after it killed the work horse on our stop-job command.
        on_stopped=Callback("runs.jobs.job_stopped"),
        description=f"Run {run.pk}: {run.name}",
    )
