"""Serializers of the datasets, experiments and promoted-models API."""

from rest_framework import serializers

from config.drf import JSONObjectField, spec_errors

from .models import Dataset, Experiment, RegisteredModel, validate_spec_for
from engine.spec import SpecError


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
        # The page's checks and messages (experiments.dataset_checks); DRF turns the Django ValidationError of a
        # refusal into a field error on `file`.
        self.dataset = Dataset(kind=Dataset.Kind.CSV)
        self.dataset.describe_csv(upload, owner=self.context["request"].user)
        return upload

    def create(self, validated_data):
        self.dataset.owner = validated_data["owner"]
        self.dataset.name = validated_data.get("name") or ""
        return self.dataset.save_with_file(validated_data["file"])


class ExperimentSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    spec = JSONObjectField(help_text=(
        "The run spec, validated like the wizard's; see engine/spec.py. Its optional `stop_rule` prunes "
        'variants that cannot win: {"kind": "median", "after_folds": 2}, {"kind": "successive_halving", '
        '"factor": 3} or {"kind": "target", "value": 0.95} (docs/results.md).'))

    class Meta:
        model = Experiment
        fields = ["id", "name", "description", "spec", "owner", "created", "updated"]
        read_only_fields = ["created", "updated"]

    def validate_spec(self, value):
        owner = self.instance.owner if self.instance else self.context["request"].user
        try:
            return validate_spec_for(owner, value)
        except SpecError as e:
            # Raised as a dict so the dotted paths are not flattened into one list under "spec".
            raise serializers.ValidationError(spec_errors(e.errors)["spec"]) from None


class RegisteredModelSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)

    class Meta:
        model = RegisteredModel
        fields = ["id", "name", "owner", "run", "sha256", "size_bytes", "metric", "score", "created"]
        read_only_fields = fields
