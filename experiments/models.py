import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

from . import catalog
from .spec import SpecError, validate_spec


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

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return self.name

    def spec_ref(self):
        if self.kind == self.Kind.CSV:
            return {"kind": "csv", "id": self.pk}
        return {"kind": self.kind, **self.params}

    def describe_csv(self, fileobj):
        """Fill size, shape, column types and SHA-256 from an uploaded CSV; raises ValidationError if unreadable."""
        import pandas as pd

        digest = hashlib.sha256()
        size = 0
        fileobj.seek(0)
        for chunk in iter(lambda: fileobj.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
        if size == 0:
            raise ValidationError({"file": "The file is empty."})
        fileobj.seek(0)
        try:
            frame = pd.read_csv(fileobj)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise ValidationError({"file": f"This is not a readable CSV file: {str(e).splitlines()[0]}"}) from None
        finally:
            fileobj.seek(0)
        if frame.shape[1] == 0:
            raise ValidationError({"file": "The file has no columns."})
        self.size_bytes = size
        self.sha256 = digest.hexdigest()
        self.n_rows, self.n_columns = frame.shape
        self.columns = [{"name": str(c), "dtype": str(t)} for c, t in frame.dtypes.items()]


class Experiment(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    spec = models.JSONField(help_text="The run spec; see experiments/spec.py for its fields.")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("admin:experiments_experiment_change", args=[self.pk])

    def clean(self):
        try:
            self.spec = validate_spec(self.spec, owner=self.owner if self.owner_id else None)
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

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_model_name_per_owner")]

    def __str__(self):
        return self.name
