"""The Run: its state machine, and the event log every state change appends to.

State changes are methods on Run. Each one locks the run's row, checks the move is legal, writes the new
state and appends its event in one transaction, so status and event log never disagree.
"""

from django.conf import settings
from django.db import models, transaction
from django.db.models import F
from django.db.models.signals import post_delete, pre_delete
from django.dispatch import Signal, receiver
from django.urls import reverse
from django.utils import timezone

from accounts import access
from engine import catalog

from datasets import storage

from .. import events, formatting
from .records import LogEntry, RunEvent, RunStep

# Sent after the commit that ends a run, with its owner_id: runs/worker/scheduling.py hands the owner's next waiting
# run to the queue. A signal, so that the model does not import the scheduler that imports it.
slot_freed = Signal()


class IllegalTransition(Exception):
    """A status change the run's current status does not allow."""


class RunQuerySet(models.QuerySet):
    def visible_to(self, user):
        """The runs `user` may see (accounts.access: their own; staff see all; a share link its one run)."""
        return access.visible(user, self)


class Run(models.Model):
    objects = RunQuerySet.as_manager()

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        CANCELLING = "cancelling", "Cancelling"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        STOPPED = "stopped", "Stopped"

    TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.STOPPED})
    ACTIVE = frozenset({Status.QUEUED, Status.RUNNING, Status.CANCELLING})
    TRANSITIONS = {
        Status.QUEUED: {Status.RUNNING, Status.STOPPED, Status.FAILED},
        Status.RUNNING: {Status.CANCELLING, Status.COMPLETED, Status.FAILED, Status.STOPPED},
        # A run that was asked to stop ends Stopped, or Failed if its worker died; never Completed.
        Status.CANCELLING: {Status.STOPPED, Status.FAILED},
        Status.COMPLETED: set(),
        Status.FAILED: set(),
        Status.STOPPED: set(),
    }

    experiment = models.ForeignKey(
        "experiments.Experiment", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="runs")
    name = models.CharField(max_length=200)
    spec = models.JSONField(help_text="Snapshot of the validated spec at launch; never changes afterwards.")
    runner = models.CharField(max_length=16, default="cv")
    rerun_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns")
    # A resume (runs/resume.py) reuses the finished folds of the run it resumes and fits only the others.
    resumed_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resumes")
    reused_fits = models.PositiveIntegerField(default=0, help_text="Fits reused from the resumed run, not refitted.")

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=300, blank=True)
    current_step = models.CharField(max_length=40, blank=True)
    current_fold = models.PositiveIntegerField(null=True, blank=True)
    total_folds = models.PositiveIntegerField(null=True, blank=True)
    current_variant = models.PositiveIntegerField(null=True, blank=True)
    total_variants = models.PositiveIntegerField(null=True, blank=True)
    variant_description = models.CharField(max_length=300, blank=True)
    current_branch = models.CharField(max_length=100, blank=True)
    # The fits running at once (a parallel run): runs.events.InFlightFit dicts, in spec order.
    in_flight = models.JSONField(default=list, blank=True)
    # The variants the spec's stop rule stopped before their last fold: runs.events.PrunedRow dicts.
    pruned = models.JSONField(default=list, blank=True)
    # Units of work: fits (folds x variants x branches) for cross-validation, epochs for training.
    total_fits = models.PositiveIntegerField(default=0)
    finished_fits = models.PositiveIntegerField(default=0)
    eta_seconds = models.FloatField(null=True, blank=True)
    eta_low = models.FloatField(null=True, blank=True, help_text="The range around the ETA (engine/runners/eta.py).")
    eta_high = models.FloatField(null=True, blank=True)
    # Training runner
    early_stopped = models.BooleanField(default=False)
    stopped_epoch = models.PositiveIntegerField(null=True, blank=True)
    latest_score = models.FloatField(null=True, blank=True)
    warnings = models.JSONField(default=list, blank=True)

    queued_at = models.DateTimeField(default=timezone.now, db_index=True)
    # A queued run waiting for one of its owner's running slots (runs/worker/scheduling.py) is in no queue yet: a slot
    # that frees hands it to RQ, and says when. A run made any other way is in RQ from the start.
    waiting_for_slot = models.BooleanField(default=False)
    released_at = models.DateTimeField(null=True, blank=True, help_text="When a run that waited for a slot got one.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    kill_sent_at = models.DateTimeField(null=True, blank=True)

    error_message = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    partial = models.BooleanField(default=False, help_text="Stopped or failed with some results kept.")

    best_score = models.FloatField(null=True, blank=True)
    best_variant = models.JSONField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    model_file = models.CharField(max_length=500, blank=True)
    model_sha256 = models.CharField(max_length=64, blank=True)

    rq_job_id = models.CharField(max_length=64, blank=True, db_index=True)
    worker_name = models.CharField(max_length=200, blank=True)

    seed = models.BigIntegerField(null=True, blank=True)
    library_versions = models.JSONField(default=dict, blank=True)
    data_hash = models.CharField(max_length=64, blank=True)

    # The last sequence number handed out for this run's events.
    last_seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-queued_at", "-id"]
        indexes = [models.Index(fields=["owner", "-queued_at"]), models.Index(fields=["status", "heartbeat_at"])]

    def __str__(self):
        return f"{self.name} #{self.pk}"

    def get_absolute_url(self):
        return reverse("live:detail", args=[self.pk])

    @property
    def is_terminal(self):
        return self.status in self.TERMINAL

    @property
    def is_active(self):
        return self.status in self.ACTIVE

    @property
    def can_stop(self):
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def duration(self):
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    @property
    def metric(self):
        return self.spec.get("metric", "")

    @property
    def metric_label(self):
        return catalog.METRIC_LABELS.get(self.metric, self.metric)

    @property
    def task(self):
        return self.spec.get("task", "")

    def visible_to(self, user):
        """The same rule as Run.objects.visible_to, for a run already loaded (the stream's access check)."""
        return access.can_view(user, self)

    @property
    def percent(self):
        """Percent complete, 0 to 100 with one decimal: fits done of fits planned (100 once completed)."""
        if self.status == self.Status.COMPLETED:
            return 100.0
        return formatting.percent(self.finished_fits, self.total_fits)

    def progress_record(self):
        """The one progress record every runner keeps, readable at any time."""
        percent = self.percent
        return {
            "runner": self.runner,
            "completed_units": self.finished_fits,
            "total_units": self.total_fits,
            "percent": percent,
            "early_stopped": self.early_stopped,
            "stopped_epoch": self.stopped_epoch,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "best_score": self.best_score,
            "latest_score": self.latest_score,
            "eta_seconds": self.eta_seconds,
            "eta_low": self.eta_low,
            "eta_high": self.eta_high,
            "error": self.error_message,
            "warnings": self.warnings,
        }

    # --- State changes ---------------------------------------------------------------------------------

    def transition(self, new_status, *, event_data=None, **fields):
        """Move to `new_status` if the current status allows it; write `fields` and the status event.

        Raises IllegalTransition, leaving the row untouched, when the move is not allowed. The row lock
        makes this safe against a worker and a web request changing the same run at once.
        """
        with transaction.atomic():
            current, owner_id, finished_fits, total_fits, started_at = (
                Run.objects.select_for_update().filter(pk=self.pk)
                .values_list("status", "owner_id", "finished_fits", "total_fits", "started_at").get())
            if new_status not in self.TRANSITIONS[current]:
                raise IllegalTransition(f"Run {self.pk} is {current}; it cannot become {new_status}.")
            now = timezone.now()
            fields["status"] = new_status
            if new_status in self.TERMINAL:
                fields.setdefault("finished_at", now)
                fields["in_flight"] = []  # nothing runs after the end, whatever the last report said
            fields["updated_at"] = now
            Run.objects.filter(pk=self.pk).update(**fields)
            event_data = dict(event_data or {})
            if new_status in self.TERMINAL:
                # A step still running was cut short; say so rather than leave it spinning forever. The event
                # names those steps, so a page shows the change from the event alone.
                cut_short = RunStep.Status.FAILED if new_status == self.Status.FAILED else RunStep.Status.INTERRUPTED
                running = RunStep.objects.filter(run_id=self.pk, status=RunStep.Status.RUNNING)
                steps = [{"step": name, "label": label, "status": cut_short}
                         for name, label in running.values_list("name", "label")]
                running.update(status=cut_short, finished_at=now)
                if steps:
                    event_data["steps"] = steps
                # How far it got, for the progress line a page shows from the event alone (formatting.ended).
                event_data.setdefault("finished_fits", fields.get("finished_fits", finished_fits))
                event_data.setdefault("total_fits", fields.get("total_fits", total_fits))
                if started_at is not None:
                    event_data.setdefault("elapsed_seconds", (fields["finished_at"] - started_at).total_seconds())
            for key, value in fields.items():
                setattr(self, key, value)
            append_event(self, *events.status_event(new_status, current, **event_data), check_open=False)
            if new_status in self.TERMINAL:
                # However a run ends (its worker, the watchdog, the reaper, a stop), its slot frees: the owner's
                # next waiting run goes to the queue. After the commit, so no run row is locked while the owner
                # is (the order runs/worker/scheduling.py takes them in); robust, so a failure there never undoes or
                # hides this end (the monitor releases it on its next round instead).
                transaction.on_commit(lambda: slot_freed.send(Run, owner_id=owner_id), robust=True)
        return self

    def log(self, level, message):
        """One line in the run's log (event and LogEntry with the same seq), from outside the engine."""
        with transaction.atomic():
            row = append_event(self, *events.log_line(level, message, step=self.current_step))
            LogEntry.objects.create(run_id=self.pk, seq=row.seq, created=row.created, level=level, message=message,
                                    step=self.current_step)

    def mark_running(self, worker_name="", **facts):
        now = timezone.now()
        return self.transition(
            self.Status.RUNNING, started_at=now, heartbeat_at=now, worker_name=worker_name, **facts
        )

    def mark_completed(self, summary, **fields):
        """`fields`: the run's final facts (best score, model file…), written with the status change."""
        return self.transition(
            self.Status.COMPLETED,
            summary=summary,
            progress=1.0,
            eta_seconds=0, eta_low=None, eta_high=None,
            message="Completed",
            event_data={"summary": summary, "has_model": bool(fields.get("model_file")), "runner": self.runner},
            **fields,
        )

    def mark_failed(self, message, traceback="", reason=None):
        """`message` is what the user reads; `reason`, the short form the run list shows (default: the message).
        The traceback is for staff only, so it stays out of the event every watcher receives."""
        has_results = self.fold_metrics.exists()
        return self.transition(
            self.Status.FAILED,
            error_message=message,
            traceback=traceback,
            partial=has_results,
            eta_seconds=None, eta_low=None, eta_high=None,
            message=(reason or message)[:300],
            event_data={"message": message, "partial": has_results, "runner": self.runner},
        )

    def mark_stopped(self, reason="Stopped by request", **fields):
        has_results = self.fold_metrics.exists()
        return self.transition(
            self.Status.STOPPED,
            partial=has_results,
            eta_seconds=None, eta_low=None, eta_high=None,
            message=reason,
            event_data={"message": reason, "partial": has_results, "runner": self.runner},
            **fields,
        )

    def mark_cancelling(self):
        return self.transition(
            self.Status.CANCELLING, cancel_requested_at=timezone.now(), message="Stopping after the current fit…"
        )


# --- The event log: every event gets the run's next seq, is refused once the run has ended, and is published
# (runs.events) after the transaction commits. Here, beside the rows it writes, so that runs.events (the
# schema and the publisher) needs no models and nothing imports in a circle.


def allocate_seqs(run_id, count=1, check_open=True):
    """Reserve `count` sequence numbers for the run; returns the first. Call inside a transaction.

    The row lock serialises every writer of one run, so numbers are strictly increasing with no gaps,
    and the terminal check cannot race with the transition that stops the run.
    """
    return _allocate(run_id, count, check_open)[0]


def _allocate(run_id, count, check_open):
    """(first seq, owner id): the owner comes with the row lock at no cost, for the list streams."""
    status, last, owner_id = (Run.objects.select_for_update().filter(pk=run_id)
                              .values_list("status", "last_seq", "owner_id").get())
    if check_open and status in Run.TERMINAL:
        raise events.RunClosed(f"Run {run_id} is {status}; nothing more is written for it.")
    Run.objects.filter(pk=run_id).update(last_seq=F("last_seq") + count)
    return last + 1, owner_id


def append_event(run, type, data, check_open=True):
    """Store one event and publish it after the transaction commits."""
    return append_events(run, [(type, data)], check_open=check_open)[0]


def append_events(run, items, check_open=True):
    """Store several events with consecutive numbers in one insert; publish them in order after commit."""
    run_id = run.pk if isinstance(run, Run) else run
    with transaction.atomic():
        first, owner_id = _allocate(run_id, len(items), check_open)
        now = timezone.now()
        rows = [
            RunEvent(run_id=run_id, seq=first + i, type=type, data=data, created=now)
            for i, (type, data) in enumerate(items)
        ]
        RunEvent.objects.bulk_create(rows)
        messages = [row.to_message() for row in rows]
        transaction.on_commit(lambda: events.publish(run_id, messages, owner_id=owner_id))
    return rows


def events_after(run_id, after=0, limit=None):
    qs = RunEvent.objects.filter(run_id=run_id, seq__gt=after).order_by("seq")
    if limit:
        qs = qs[:limit]
    return [e.to_message() for e in qs]


@receiver(pre_delete, sender=Run)
def lock_before_delete(sender, instance, using, **kwargs):
    """Take the run's row lock before its event rows go (Django deletes a run's rows first, in the same
    transaction, then the run). The event tables have no foreign key in the database (appended_to_run): without
    the lock, a writer could claim the run and commit a batch in between, and its rows would outlive the run.
    With it, a writer that claimed first commits before the rows are deleted, and one that comes after finds no
    run and writes nothing."""
    list(Run.objects.using(using).select_for_update().filter(pk=instance.pk).values_list("pk"))


@receiver(post_delete, sender=Run)
def delete_bundle(sender, instance, using, **kwargs):
    """A run's exported bundle goes with the run, once the deletion has committed (a rolled-back deletion keeps
    both). A model promoted from the run keeps its own copy (results/promotion.py)."""
    if instance.model_file:
        name = instance.model_file
        transaction.on_commit(lambda: storage.delete(name), using=using)
