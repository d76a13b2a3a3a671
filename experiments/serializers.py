"""Serializers of the experiments and promoted-models API."""

from rest_framework import serializers

from config.drf import JSONObjectField, spec_errors

from .models import Experiment, RegisteredModel, validate_spec_for
from engine.spec import SpecError


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
