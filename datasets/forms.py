"""The dataset upload page's form. The checks are datasets.checks, the same as the API's and the
admin's; saving is Dataset.save_with_file, which keeps the row and its file together."""

from django import forms

from .checks import max_upload_mb
from .models import Dataset

__all__ = ["DatasetUploadForm", "max_upload_mb"]


class DatasetUploadForm(forms.Form):
    # An empty file is let through to the checks, so it gets their message, the same as in the API.
    file = forms.FileField(label="CSV file", help_text="A text file of comma-separated values with a header row.",
                           allow_empty_file=True, error_messages={"required": "Choose a CSV file to upload."})
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to the file name.")

    def __init__(self, *args, owner=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner  # whose storage quota the file counts against

    def clean_file(self):
        upload = self.cleaned_data["file"]
        self.dataset = Dataset(kind=Dataset.Kind.CSV)
        self.dataset.describe_csv(upload, owner=self.owner)  # a refusal's ValidationError lands on this field
        return upload

    def save(self, owner):
        self.dataset.owner = owner
        self.dataset.name = self.cleaned_data.get("name") or ""
        return self.dataset.save_with_file(self.cleaned_data["file"])
