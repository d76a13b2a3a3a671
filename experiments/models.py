import os

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

from accounts import access
from accounts.quotas import spec_ceilings_for

from engine import catalog
from engine.spec import Ceilings, SpecError, validate_spec


class OwnedQuerySet(models.QuerySet):
    def visible_to(self, user):
        """What `user` may see and use: their own objects, or everything for staff (accounts.access)."""
        return access.visible(user, self)


class Dataset(models.Model):
    class Kind(models.TextChoices):
        CSV = "csv", "Uploaded CSV"
        BUILTIN = "builtin", "Built-in (scikit-learn)"
        SYNTHETIC = "synthetic", "Synthetic generator"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CSV)
    file = models.FileField(upload_to="datasets/%Y/%m/", blank=True)
    # For built-in and synthetic datasets: the same reference a spec holds.
    params = models.JSONField(default=dict, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    n_rows = models.PositiveIntegerField(default=0)
    n_columns = models.PositiveIntegerField(default=0)
    columns = models.JSONField(default=list, blank=True, help_text='[{"name": ..., "dtype": ...}]')
    sha256 = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return self.name

    def spec_ref(self):
        if self.kind == self.Kind.CSV:
            return {"kind": "csv", "id": self.pk}
        return {"kind": self.kind, **self.params}

    def describe_csv(self, fileobj, owner=None):
        """Check an uploaded CSV the one way (experiments.dataset_checks) and fill its size, shape, column profile
        and SHA-256; raises the check's ValidationError (one message) if it is refused."""
        from . import profiling
        from .dataset_checks import check_upload
        from engine.files import file_sha256, path_size

        frame = check_upload(fileobj)
        if owner is not None:
            # The owner's storage quota (accounts.quotas), checked as the file is accepted, so every way in
            # shows its message on the file like any other refusal.
            from accounts.quotas import check_storage

            check_storage(owner, path_size(fileobj))
        self.size_bytes = path_size(fileobj)
        self.sha256 = file_sha256(fileobj)
        self.n_rows, self.n_columns = frame.shape
        self.columns = profiling.profile(frame)

    def profiled_columns(self, frame=None):
        """The current column profile (experiments.profiling). Datasets uploaded before the statistics, or
        through the API or the admin, have older or no facts stored, so theirs is computed from the file
        (`frame`, when the caller has read it already). In memory only: the stored row and the API's answer
        stay as they were."""
        from . import profiling
        from .storage import read_stored_csv

        if profiling.is_current(self.columns) or self.kind != self.Kind.CSV:
            return self.columns
        if frame is None:
            frame, _ = read_stored_csv(self.file)
        return profiling.profile(frame) if frame is not None else self.columns

    def save_with_file(self, upload):
        """Store `upload` as this dataset's file and save the row: neither is kept without the other. The name
        defaults to the file's."""
        filename = os.path.basename(upload.name or "").replace("\x00", "")
        self.name = self.name or filename[:200] or "data.csv"
        self.file.save(filename or "data.csv", upload, save=False)
        try:
            self.save()
        except Exception:
            self.file.storage.delete(self.file.name)
            raise
        return self


class Experiment(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    spec = models.JSONField(help_text="The run spec; see engine/spec.py for its fields.")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-updated"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("admin:experiments_experiment_change", args=[self.pk])

    def clean(self):
        try:
            self.spec = validate_spec_for(self.owner if self.owner_id else None, self.spec)
        except SpecError as e:
            raise ValidationError({"spec": [f"{path}: {msg}" for path, msgs in e.errors.items() for msg in msgs]})

    @property
    def runner(self):
        return (self.spec or {}).get("runner", "cv")

    @property
    def metric_label(self):
        return catalog.METRIC_LABELS.get((self.spec or {}).get("metric"), "")


class RegisteredModel(models.Model):
    """A run's exported model promoted under a name (runs API `promote/`), kept after the run is gone.

    The bundle is copied into its own file, so deleting or re-running the run never changes what was
    promoted; `sha256` is the run's checksum of that same file.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="registered_models")
    name = models.CharField(max_length=200)
    run = models.ForeignKey("runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="promotions")
    file = models.FileField(upload_to="models/%Y/%m/")
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField(default=0)
    metric = models.CharField(max_length=40, blank=True)
    score = models.FloatField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_model_name_per_owner")]

    def __str__(self):
        return self.name


# --- Spec validation with what only the server knows ------------------------------------------------------


class SpecLookups:
    """Answers engine.spec.validate_spec's questions about the database for one user (None: nobody)."""

    def __init__(self, user):
        self.user = user

    def csv_dataset(self, dataset_id):
        dataset = Dataset.objects.visible_to(self.user).filter(pk=dataset_id, kind=Dataset.Kind.CSV).first()
        if dataset is None:
            return None
        return {"sha256": dataset.sha256, "n_rows": dataset.n_rows, "n_columns": dataset.n_columns,
                "columns": [c["name"] for c in dataset.columns or []]}

    def evaluable_run(self, run_id):
        if self.user is None:
            return False
        # Looked up by name: runs depends on experiments, so importing runs.models here would be a circle.
        run = apps.get_model("runs", "Run")
        return run.objects.visible_to(self.user).filter(pk=run_id, status=run.Status.COMPLETED).exclude(
            model_file="").exists()


def spec_ceilings():
    """The server's ceilings for specs. The limit settings may be absent; the defaults match Ceilings'."""
    config = getattr(settings, "RUNWATCH", {})
    return Ceilings(
        total_fits=config.get("MAX_TOTAL_FITS", Ceilings.total_fits),
        time_seconds=config.get("RUN_TIME_LIMIT_MAX_SECONDS", 86_400),
        memory_mb=config.get("RUN_MEMORY_LIMIT_MAX_MB", 16_384),
        n_jobs=config.get("N_JOBS_MAX", Ceilings.n_jobs),
    )


def validate_spec_for(owner, data):
    """validate_spec for `owner`: the CSV datasets and runs they may use, and this server's ceilings lowered to
    the largest limits their quota allows (accounts.quotas)."""
    return validate_spec(data, lookups=SpecLookups(owner), ceilings=spec_ceilings_for(owner, spec_ceilings()))
