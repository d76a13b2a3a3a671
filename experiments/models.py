from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

from accounts.access import OwnedQuerySet
from accounts.quotas import spec_ceilings_for
from datasets.models import Dataset

from engine import catalog
from engine.spec import Ceilings, SpecError, validate_spec


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
