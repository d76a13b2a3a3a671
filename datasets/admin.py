"""The admin for datasets. A CSV added here goes through the upload page's checks (Dataset.describe_csv) and is
saved the same way (Dataset.save_with_file)."""

import json

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from .models import Dataset


class PrettyJSONField(forms.JSONField):
    """Shows JSON indented, so a spec is readable and editable in the admin."""

    widget = forms.Textarea(attrs={"rows": 24, "cols": 100, "style": "font-family:monospace"})

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder)


class DatasetAdminForm(forms.ModelForm):
    class Meta:
        model = Dataset
        fields = ("owner", "name", "kind", "file", "params")
        field_classes = {"params": PrettyJSONField}
        widgets = {"params": forms.Textarea(attrs={"rows": 6, "cols": 80, "style": "font-family:monospace"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].allow_empty_file = True  # the checks below refuse it, with the page's message

    def clean(self):
        cleaned = super().clean()
        upload = self.files.get("file")
        if cleaned.get("kind") == Dataset.Kind.CSV:
            if upload is not None:
                # The upload page's checks and messages, and the same facts recorded: size, shape, profile, SHA-256.
                try:
                    self.instance.describe_csv(upload, owner=cleaned.get("owner"))
                except ValidationError as e:
                    self.add_error("file", e)
            elif not cleaned.get("file"):
                self.add_error("file", "Upload the CSV file.")
        return cleaned


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    form = DatasetAdminForm
    list_display = ("name", "kind", "owner", "n_rows", "n_columns", "size_bytes", "created")
    list_filter = ("kind", ("owner", admin.RelatedOnlyFieldListFilter))
    search_fields = ("name", "sha256")
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)
    readonly_fields = ("size_bytes", "n_rows", "n_columns", "columns_table", "sha256", "created")

    def save_model(self, request, dataset, form, change):
        upload = form.files.get("file")
        if dataset.kind == Dataset.Kind.CSV and upload is not None:
            dataset.save_with_file(upload)  # as the page and the API save: no file without its row
        else:
            super().save_model(request, dataset, form, change)

    @admin.display(description="Columns")
    def columns_table(self, dataset):
        if not dataset.columns:
            return "—"
        return format_html(
            "<pre style='margin:0'>{}</pre>", "\n".join(f"{c.get('name')}: {c.get('dtype')}" for c in dataset.columns)
        )
