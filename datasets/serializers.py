"""Serializers of the datasets API. An upload is checked by Dataset.describe_csv, as the upload page's form is."""

from rest_framework import serializers

from .models import Dataset


class DatasetSerializer(serializers.ModelSerializer):
    spec_ref = serializers.JSONField(read_only=True, help_text='Use this as a spec\'s "dataset".')

    class Meta:
        model = Dataset
        fields = ["id", "name", "kind", "params", "size_bytes", "n_rows", "n_columns", "columns", "sha256", "created",
                  "spec_ref"]
        read_only_fields = fields


class DatasetUploadSerializer(serializers.Serializer):
    """multipart/form-data: `file` (a CSV with a header row) and an optional `name`."""

    # An empty file is let through to the checks, so it gets their message, the same as on the page.
    file = serializers.FileField(help_text="A CSV file with a header row.", allow_empty_file=True)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True,
                                 help_text="Defaults to the file name.")

    def validate_file(self, upload):
        # The page's checks and messages (datasets.checks, through Dataset.describe_csv); DRF turns the Django
        # ValidationError of a refusal into a field error on `file`.
        self.dataset = Dataset(kind=Dataset.Kind.CSV)
        self.dataset.describe_csv(upload, owner=self.context["request"].user)
        return upload

    def create(self, validated_data):
        self.dataset.owner = validated_data["owner"]
        self.dataset.name = validated_data.get("name") or ""
        return self.dataset.save_with_file(validated_data["file"])
