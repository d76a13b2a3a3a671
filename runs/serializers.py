"""Serializers of the runs API, and the few pieces every API module shares (JSON object field, errors, schema).

Response shapes follow the models and runs/events.py; nothing here changes state.
"""

import math

from drf_spectacular import openapi
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import parsers, serializers
from rest_framework.exceptions import ParseError
from rest_framework.permissions import AllowAny

from experiments.models import Experiment

from . import events
from .models import FoldMetric, LogEntry, Run, RunStep

# PostgreSQL bigint: larger ids and cursors cannot exist, and passing them to a query is a database error.
MAX_BIGINT = 2**63 - 1
MAX_JSON_DEPTH = 32


# --- Shared ---------------------------------------------------------------------------------------------


def json_problem(value):
    """Why `value` cannot be stored in a JSON column, or None. Iterative, so deep nesting cannot crash it.

    PostgreSQL's jsonb refuses NaN/Infinity and NUL characters; letting them through would be a 500.
    """
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"Nested more than {MAX_JSON_DEPTH} levels deep."
        if isinstance(item, float) and not math.isfinite(item):
            return "Numbers must be finite."
        if isinstance(item, str) and "\x00" in item:
            return "Text must not contain NUL characters."
        if isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    return "Text must not contain NUL characters."
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return None


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, except that absurdly deep nesting is a 400 too (the decoder raises RecursionError)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(serializers.JSONField):
    """A JSON object (not a list or a scalar) that the database can store."""

    default_error_messages = {"not_object": "Must be a JSON object."}

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            self.fail("not_object")
        problem = json_problem(data)
        if problem:
            raise serializers.ValidationError(problem)
        return data


def spec_errors(errors):
    """experiments.spec.SpecError paths as DRF field errors under "spec": {"spec": {"models.0.params.alpha": [..]}}.

    An error about the spec as a whole (path "spec") becomes a plain list, as DRF reports any other field.
    """
    if set(errors) == {"spec"}:
        return {"spec": errors["spec"]}
    return {"spec": {path: list(msgs) for path, msgs in errors.items()}}


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, for a person to read.")


FIELD_ERRORS = OpenApiResponse(
    response={
        "type": "object",
        "description": 'Field errors: {"field": ["message", ...]}; "non_field_errors" for the request as a whole; '
        'spec errors are keyed by dotted path: {"spec": {"models.0.params.alpha": ["..."]}}.',
        "additionalProperties": True,
    },
    description="Invalid input",
)
DETAIL = {code: OpenApiResponse(DetailSerializer, description=text) for code, text in {
    "401": "Not authenticated: send `Authorization: Token <key>` (POST /api/v1/auth/token/) or a session cookie",
    "403": "CSRF check failed (session authentication only)",
    "404": "No such object, or it belongs to someone else",
    "409": "The object's state does not allow this action",
    "429": "Too many requests; see the Retry-After header",
}.items()}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema plus the error responses DRF gives, so clients know every status they can get."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        errors = {}
        if self.method in ("POST", "PUT", "PATCH") or self._get_filter_parameters() or self.get_override_parameters():
            errors["400"] = FIELD_ERRORS
        if not all(isinstance(p, AllowAny) for p in self.view.get_permissions()):
            errors["401"] = DETAIL["401"]
            if self.method not in ("GET", "HEAD", "OPTIONS"):
                errors["403"] = DETAIL["403"]
        if "{" in self.path or self._is_list_view():
            errors["404"] = DETAIL["404"]  # unknown id, someone else's object, or a page past the end
        for code, response in errors.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response.response, code, direction=direction)
                responses[code]["description"] = response.description
        return responses


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`.")


# --- Runs -----------------------------------------------------------------------------------------------


class ProgressSerializer(serializers.Serializer):
    """Run.progress_record(): the same fields for every runner."""

    runner = serializers.ChoiceField(choices=["cv", "training", "evaluation"])
    completed_units = serializers.IntegerField(help_text="Fits (cross-validation) or epochs (training) done.")
    total_units = serializers.IntegerField()
    percent = serializers.FloatField(help_text="0 to 100.")
    early_stopped = serializers.BooleanField()
    stopped_epoch = serializers.IntegerField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField(help_text="Last change of the run's record.")
    best_score = serializers.FloatField(allow_null=True)
    latest_score = serializers.FloatField(allow_null=True)
    eta_seconds = serializers.FloatField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    warnings = serializers.ListField(child=serializers.CharField())


class RunSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    progress_record = serializers.SerializerMethodField()
    has_model = serializers.SerializerMethodField()
    is_terminal = serializers.BooleanField(read_only=True)
    spec = serializers.JSONField(read_only=True, help_text="The validated spec snapshot the run executes.")

    class Meta:
        model = Run
        fields = [
            "id", "name", "owner", "experiment", "rerun_of", "runner", "spec", "status", "is_terminal", "message",
            "progress", "progress_record", "current_step", "current_fold", "total_folds", "current_variant",
            "total_variants", "variant_description", "current_branch", "total_fits", "finished_fits",
            "queued_at", "started_at", "finished_at", "updated_at", "cancel_requested_at",
            "best_score", "best_variant", "summary", "error_message", "partial", "has_model", "model_sha256",
            "seed", "data_hash", "library_versions", "last_seq",
        ]
        read_only_fields = fields
        extra_kwargs = {"progress": {"help_text": "Fraction done, 0 to 1."}}

    @extend_schema_field(ProgressSerializer)
    def get_progress_record(self, run):
        return ProgressSerializer(run.progress_record()).data

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_has_model(self, run):
        return bool(run.model_file)


class RunCreateSerializer(serializers.Serializer):
    """Submit a run: give `experiment` (an id) or an inline `spec`, not both."""

    experiment = serializers.PrimaryKeyRelatedField(
        queryset=Experiment.objects.all(), required=False, help_text="Run this experiment's spec."
    )
    spec = JSONObjectField(required=False, help_text="An inline run spec (same format as an experiment's spec).")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None and not request.user.is_staff:
            # Someone else's experiment id reads as "does not exist", as everywhere else.
            self.fields["experiment"].queryset = Experiment.objects.filter(owner=request.user)

    def validate(self, attrs):
        if ("experiment" in attrs) == ("spec" in attrs):
            raise serializers.ValidationError("Give either an experiment id or an inline spec.")
        return attrs


class RunFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Run.Status.choices, required=False)
    experiment = serializers.IntegerField(min_value=1, max_value=MAX_BIGINT, required=False)
    created_after = serializers.DateTimeField(required=False, help_text="Queued at or after this time.")
    created_before = serializers.DateTimeField(required=False, help_text="Queued before this time.")


class EventSerializer(serializers.Serializer):
    """One stored event, exactly as the WebSocket JSON stream sends it."""

    seq = serializers.IntegerField(help_text="Per-run sequence number: 1, 2, 3, ... with no gaps.")
    type = serializers.ChoiceField(choices=events.STORED_TYPES)
    ts = serializers.DateTimeField()
    run = serializers.IntegerField()
    data = serializers.DictField(help_text="Depends on `type`; see docs/websocket-protocol.md and runs/events.py.")


class EventQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(min_value=0, max_value=MAX_BIGINT, default=0, help_text="Events with seq > after.")
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=1000)


class StepSerializer(serializers.ModelSerializer):
    class Meta:
        model = RunStep
        fields = ["name", "label", "order", "status", "started_at", "finished_at", "detail"]


class MetricSerializer(serializers.ModelSerializer):
    class Meta:
        model = FoldMetric
        fields = ["branch", "variant", "variant_description", "fold", "epoch", "metric", "value", "fit_time", "seq"]


class MetricFilterSerializer(serializers.Serializer):
    branch = serializers.CharField(max_length=100, required=False)
    variant = serializers.IntegerField(min_value=1, max_value=MAX_BIGINT, required=False)
    fold = serializers.IntegerField(min_value=1, max_value=MAX_BIGINT, required=False)
    epoch = serializers.IntegerField(min_value=1, max_value=MAX_BIGINT, required=False)
    metric = serializers.CharField(max_length=40, required=False)


class LogSerializer(serializers.ModelSerializer):
    class Meta:
        model = LogEntry
        fields = ["seq", "created", "level", "message", "step", "fold", "branch", "variant"]


class LogFilterSerializer(serializers.Serializer):
    level = serializers.ChoiceField(choices=LogEntry.Level.choices, required=False)
    step = serializers.CharField(max_length=40, required=False)
    fold = serializers.IntegerField(min_value=1, max_value=MAX_BIGINT, required=False)
    branch = serializers.CharField(max_length=100, required=False)
    variant = serializers.IntegerField(min_value=1, max_value=MAX_BIGINT, required=False)


class ScoreSerializer(serializers.Serializer):
    mean = serializers.FloatField(allow_null=True)
    std = serializers.FloatField(allow_null=True, help_text="Population standard deviation over folds.")
    count = serializers.IntegerField(help_text="Folds (or epochs) with a value.")


class LeaderboardRowSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    branch = serializers.CharField()
    variant = serializers.IntegerField()
    description = serializers.CharField()
    folds = serializers.IntegerField(help_text="Folds scored (cross-validation) or epochs (training).")
    fit_time = serializers.FloatField(help_text="Mean fit time in seconds.")
    primary = ScoreSerializer(help_text="The primary metric's score.")
    scores = serializers.DictField(child=ScoreSerializer(), help_text="Every recorded metric by name.")


class ResultsSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    status = serializers.CharField(help_text="The run's status (results of an active run are partial).")
    metric = serializers.CharField(help_text="The primary metric the leaderboard is sorted by.")
    greater_is_better = serializers.BooleanField()
    metrics = serializers.ListField(child=serializers.CharField())
    leaderboard = LeaderboardRowSerializer(many=True, help_text="Best first; rows without a score last.")


class WaitQuerySerializer(serializers.Serializer):
    timeout = serializers.FloatField(
        min_value=0, max_value=60, default=30, help_text="Seconds to wait at most (0 to 60)."
    )


class PromoteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, help_text="Unique among your promoted models.")
