"""What a run records as it works: its steps, and the append-only tables it writes as fast as it reports
(events, log lines, fold scores and fold diagnostics). They name the run by label, so this module imports
nothing of run.py, which writes to them."""

from django.db import models
from django.utils import timezone


class RunStep(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        INTERRUPTED = "interrupted", "Interrupted"  # cut short by a stop

    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=40)
    label = models.CharField(max_length=80, blank=True)
    order = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "order"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="unique_step_per_run")]

    def __str__(self):
        return self.label or self.name

    @property
    def duration(self):
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at


def appended_to_run(related_name):
    """The run of a row in one of the event tables (RunEvent, LogEntry, FoldMetric), which a run appends to as
    fast as it reports: no foreign key constraint and no index of its own in the database.

    Every insert claims the run's row first, under its lock (runs.rows.claim, allocate_seqs) and in the same
    transaction, so a row cannot name a run that does not exist; the deletion of a run takes the same lock
    before anything else (lock_before_delete). PostgreSQL's check of the constraint was a query per row at
    commit: 40% of the time of writing a batch of 2,000 fold metrics (14.7 of 35.7 ms). Each table's own
    index starts with the run, so a second index on the run alone only cost another insert per row."""
    return models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name=related_name, db_constraint=False,
                             db_index=False)


class FoldMetric(models.Model):
    run = appended_to_run("fold_metrics")
    branch = models.CharField(max_length=100, default="default")
    variant = models.PositiveIntegerField(help_text="1-based variant index across the spec's models")
    variant_description = models.CharField(max_length=300, blank=True)
    fold = models.PositiveIntegerField(null=True, blank=True, help_text="1-based; empty for epoch scores")
    epoch = models.PositiveIntegerField(null=True, blank=True)
    metric = models.CharField(max_length=40)
    value = models.FloatField(null=True)
    fit_time = models.FloatField(default=0.0)
    seconds = models.FloatField(null=True, blank=True, help_text="The fold's fit, scoring and diagnostics (what the "
                                "ETA counts); empty for epochs and for folds stored before it was recorded.")
    reused = models.BooleanField(default=False, help_text="Taken from the resumed run, not fitted by this one.")
    seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["run", "seq", "id"]
        indexes = [models.Index(fields=["run", "branch", "variant"])]

    def __str__(self):
        return f"{self.metric}={self.value}"


class FoldDiagnostic(models.Model):
    """One fold's out-of-fold diagnostics (engine.diagnostics: confusion matrix, ROC and PR curves,
    calibration, or predicted against actual; the model's feature importance), as the fit child made them.

    One row per fold, not a field on FoldMetric (a row per metric); written by the reporter in the same batch
    and with the same seq as the fold's JOB_METRICS event, which does not carry them: a watcher needs the
    scores live, and only the results page, compare and the API read these (results.diagnostics)."""

    run = appended_to_run("fold_diagnostics")
    seq = models.PositiveBigIntegerField(default=0)
    branch = models.CharField(max_length=100, default="default")
    variant = models.PositiveIntegerField()
    fold = models.PositiveIntegerField()
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["run", "seq"]
        indexes = [models.Index(fields=["run", "branch", "variant"])]

    def __str__(self):
        return f"run {self.run_id} {self.branch}/{self.variant} fold {self.fold}"


class LogEntry(models.Model):
    class Level(models.TextChoices):
        DEBUG = "debug", "Debug"
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"

    run = appended_to_run("logs")
    seq = models.PositiveBigIntegerField()
    created = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    message = models.TextField()
    step = models.CharField(max_length=40, blank=True)
    fold = models.PositiveIntegerField(null=True, blank=True)
    branch = models.CharField(max_length=100, blank=True)
    variant = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["run", "seq"]
        indexes = [models.Index(fields=["run", "seq"]), models.Index(fields=["run", "level", "seq"])]
        verbose_name_plural = "log entries"

    def __str__(self):
        return f"[{self.level}] {self.message[:80]}"


class RunEvent(models.Model):
    """The durable, append-only event log: everything a watcher can receive, in sequence order."""

    run = appended_to_run("events")
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=32)
    data = models.JSONField(default=dict)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="unique_event_seq_per_run")]

    def __str__(self):
        return f"{self.run_id}#{self.seq} {self.type}"

    def to_message(self):
        return {"seq": self.seq, "type": self.type, "ts": self.created.isoformat(), "run": self.run_id, "data": self.data}
