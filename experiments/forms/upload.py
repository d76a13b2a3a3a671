"""The dataset upload form: every check of an uploaded CSV, then the row and its file saved together."""

import os

from django import forms
from django.conf import settings

from .. import profiling
from ..files import file_sha256, path_size, read_csv
from ..models import Dataset


def max_upload_mb():
    return settings.RUNWATCH.get("DATASET_MAX_UPLOAD_MB", 50)


class DatasetUploadForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="A text file of comma-separated values with a header row.",
                           error_messages={"empty": "The file is empty (0 bytes).",
                                           "required": "Choose a CSV file to upload."})
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to the file name.")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = max_upload_mb()
        if upload.size > limit * 1024 * 1024:
            raise forms.ValidationError(f"The file is {upload.size / 1024 / 1024:.1f} MB; the limit is {limit} MB.")
        frame, problem = read_csv(upload)
        problem = problem or profiling.upload_problem(frame)
        if problem:
            raise forms.ValidationError(problem)
        self.frame = frame
        return upload

    def save(self, owner):
        upload = self.cleaned_data["file"]
        name = self.cleaned_data.get("name") or os.path.basename(upload.name).replace("\x00", "")[:200]
        frame = self.frame
        dataset = Dataset(owner=owner, name=name, kind=Dataset.Kind.CSV, size_bytes=path_size(upload),
                          sha256=file_sha256(upload), n_rows=frame.shape[0], n_columns=frame.shape[1],
                          columns=profiling.profile(frame))
        dataset.file.save(os.path.basename(upload.name).replace("\x00", "") or "data.csv", upload, save=False)
        try:
            dataset.save()
        except Exception:
            dataset.file.storage.delete(dataset.file.name)  # no file without its row
            raise
        return dataset
