"""Serializers of the runs API (the pieces every API module shares are in config/drf.py).

Response shapes follow the models and runs/events.py; nothing here changes state.
"""

from drf_spectacular.plumbing import resolve_type_hint
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.drf import JSONObjectField
from engine.runners import stop_rules
from experiments.models import Experiment

from . import events
from .worker import queue
from .models import FoldMetric, LogEntry, Run, RunStep

# PostgreSQL bigint: larger ids and cursors cannot exist, and passing them to a query is a database error.
MAX_BIGINT = 2**63 - 1

# Named once for the OpenAPI schema (config/settings.py ENUM_NAME_OVERRIDES), where several fields use them.
STOP_RULE_KINDS = list(stop_rules.KINDS)
TASK_KINDS = ["classification", "regression"]


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
    eta_seconds = serializers.FloatField(allow_null=True, help_text="Seconds left, the estimate.")
    eta_low = serializers.FloatField(allow_null=True, help_text="The low end of the seconds left; null if none.")
    eta_high = serializers.FloatField(allow_null=True, help_text="The high end of the seconds left; null if none.")
    error = serializers.CharField(allow_blank=True)
    warnings = serializers.ListField(child=serializers.CharField())


class PrunedRowSerializer(serializers.Serializer):
    """A variant the spec's stop rule stopped before its last fold (runs.events.PrunedRow)."""

    branch = serializers.CharField()
    variant = serializers.IntegerField()
    rule = serializers.ChoiceField(choices=STOP_RULE_KINDS)
    folds = serializers.IntegerField(help_text="Folds it had when it stopped; its partial mean is over these.")
    mean = serializers.FloatField(allow_null=True, help_text="Its running mean of the primary metric then.")
    threshold = serializers.FloatField(allow_null=True, help_text="The median, the rung's cut-off, or the target.")
    message = serializers.CharField(help_text="The decision as the log says it.")


class StopRuleSerializer(serializers.Serializer):
    """The spec's optional `stop_rule` (engine/runners/stop_rules.py): one of {"kind": "median", "after_folds": 2},
    {"kind": "successive_halving", "factor": 3}, {"kind": "target", "value": 0.95}."""

    kind = serializers.ChoiceField(choices=STOP_RULE_KINDS)
    after_folds = serializers.IntegerField(required=False, min_value=1, help_text="median: judge from this fold on.")
    factor = serializers.IntegerField(required=False, min_value=2, help_text="successive_halving: keep the best 1/factor.")
    value = serializers.FloatField(required=False, help_text="target: end the run once a variant's mean reaches it.")


class RunSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    progress_record = serializers.SerializerMethodField()
    has_model = serializers.SerializerMethodField()
    is_terminal = serializers.BooleanField(read_only=True)
    spec = serializers.JSONField(read_only=True, help_text="The validated spec snapshot the run executes.")
    waiting_reason = serializers.SerializerMethodField(help_text="Why a queued run has not started; else null.")
    queue_position = serializers.SerializerMethodField(help_text="1-based place of a queued run in the queue.")
    stop_rule = serializers.SerializerMethodField(help_text="The spec's stop rule, or null: every fit runs.")
    pruned = PrunedRowSerializer(many=True, read_only=True, help_text="The variants its stop rule pruned so far.")

    class Meta:
        model = Run
        fields = [
            "id", "name", "owner", "experiment", "rerun_of", "resumed_from", "reused_fits", "runner", "spec", "status", "is_terminal", "message",
            "progress", "progress_record", "current_step", "current_fold", "total_folds", "current_variant",
            "total_variants", "variant_description", "current_branch", "in_flight", "total_fits", "finished_fits",
            "queued_at", "started_at", "finished_at", "updated_at", "cancel_requested_at",
            "best_score", "best_variant", "summary", "error_message", "partial", "has_model", "model_sha256",
            "seed", "data_hash", "library_versions", "last_seq", "waiting_reason", "queue_position", "stop_rule",
            "pruned",
        ]
        read_only_fields = fields
        extra_kwargs = {"progress": {"help_text": "Fraction done, 0 to 1."}}

    @extend_schema_field(ProgressSerializer)
    def get_progress_record(self, run):
        return ProgressSerializer(run.progress_record()).data

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_has_model(self, run):
        return bool(run.model_file)

    @extend_schema_field(StopRuleSerializer(allow_null=True))
    def get_stop_rule(self, run):
        return (run.spec or {}).get("stop_rule")

    @extend_schema_field({"type": "string", "nullable": True})
    def get_waiting_reason(self, run):
        return queue.waiting_reason(run, queue.snapshot(self.context.get("request"))) if run.status == Run.Status.QUEUED else None

    @extend_schema_field({"type": "integer", "nullable": True})
    def get_queue_position(self, run):
        return queue.queue_position(run, queue.snapshot(self.context.get("request"))) if run.status == Run.Status.QUEUED else None


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
        if request is not None:
            # Someone else's experiment id reads as "does not exist", as everywhere else.
            self.fields["experiment"].queryset = Experiment.objects.visible_to(request.user)

    def validate(self, attrs):
        if ("experiment" in attrs) == ("spec" in attrs):
            raise serializers.ValidationError("Give either an experiment id or an inline spec.")
        return attrs


class RunFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Run.Status.choices, required=False)
    experiment = serializers.IntegerField(min_value=1, max_value=MAX_BIGINT, required=False)
    created_after = serializers.DateTimeField(required=False, help_text="Queued at or after this time.")
    created_before = serializers.DateTimeField(required=False, help_text="Queued before this time.")


def _payload_schema():
    """`data` of an event: one object schema per payload type in runs/events.py, titled with its event types."""
    types_of = {}
    for type_, payload in events.PAYLOADS.items():
        types_of.setdefault(payload, []).append(type_)
    variants = [dict(resolve_type_hint(payload), title=" / ".join(types)) for payload, types in types_of.items()]
    # anyOf, not oneOf: a small payload (a step's, say) can fit more than one shape; `type` tells which it is.
    return {"anyOf": variants, "description": "Depends on `type` (each schema's title names its types); "
            "docs/websocket-protocol.md describes every field."}


@extend_schema_field(_payload_schema())
class EventDataField(serializers.DictField):
    pass


class EventSerializer(serializers.Serializer):
    """One stored event, exactly as the WebSocket JSON stream sends it."""

    seq = serializers.IntegerField(help_text="Per-run sequence number: 1, 2, 3, ... with no gaps.")
    type = serializers.ChoiceField(choices=events.STORED_TYPES)
    ts = serializers.DateTimeField()
    run = serializers.IntegerField()
    data = EventDataField()


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


class WaitQuerySerializer(serializers.Serializer):
    timeout = serializers.FloatField(
        min_value=0, max_value=60, default=30, help_text="Seconds to wait at most (0 to 60)."
    )


class ResumeSerializer(serializers.Serializer):
    spec = serializers.JSONField(
        required=False,
        help_text="Optional: the spec you expect the resume to fit. A resume fits the run's own spec; a different "
                  "one is refused (409), since its folds would not be the run's.")

    def validate_spec(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Expected a JSON object: the run's spec.")
        return value
