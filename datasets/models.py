"""A dataset: an uploaded CSV (its file and the facts read from it once, as it was accepted), or a reference to a
built-in or synthetic one, in the form a spec holds."""

import os

from django.conf import settings
from django.db import models

from accounts.access import OwnedQuerySet


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
        # The table it had in experiments, where it was born: moving the model (migrations 0001 here and
        # experiments' 0004) changed only Django's state, not the database.
        db_table = "experiments_dataset"
        ordering = ["-created"]

    def __str__(self):
        return self.name

    def spec_ref(self):
        if self.kind == self.Kind.CSV:
            return {"kind": "csv", "id": self.pk}
        return {"kind": self.kind, **self.params}

    def describe_csv(self, fileobj, owner=None):
        """Check an uploaded CSV the one way (datasets.checks) and fill its size, shape, column profile
        and SHA-256; raises the check's ValidationError (one message) if it is refused."""
        from . import profiling
        from .checks import check_upload
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
        """The current column profile (datasets.profiling). Datasets uploaded before the statistics, or
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
