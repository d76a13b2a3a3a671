"""Serializers of the results API: the leaderboard, a variant's out-of-fold diagnostics and promotion."""

from rest_framework import serializers

from runs.serializers import MAX_BIGINT, TASK_KINDS, PrunedRowSerializer


class ScoreSerializer(serializers.Serializer):
    mean = serializers.FloatField(allow_null=True)
    std = serializers.FloatField(allow_null=True, help_text="Population standard deviation over folds.")
    count = serializers.IntegerField(help_text="Folds (or epochs) with a value.")


class LeaderboardRowSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    branch = serializers.CharField()
    variant = serializers.IntegerField()
    description = serializers.CharField()
    label = serializers.CharField(help_text="The description, with the branch when there are several.")
    folds = serializers.IntegerField(help_text="Folds scored (cross-validation) or epochs (training).")
    complete = serializers.BooleanField(
        help_text="Every fold finished (false for the variant a stopped run was in). Unfinished rows rank last."
    )
    fit_time = serializers.FloatField(help_text="Mean fit time in seconds.")
    primary = ScoreSerializer(help_text="The primary metric's score.")
    scores = serializers.DictField(child=ScoreSerializer(), help_text="Every recorded metric by name.")
    pruned = PrunedRowSerializer(allow_null=True, help_text=(
        "Set when the spec's stop rule stopped this variant early: it ranks below every complete variant, with "
        "the partial mean of the folds it had."))


class ResultsQuerySerializer(serializers.Serializer):
    """`rank_by` must be a metric the run recorded: the view passes them as `metrics` in the context."""

    rank_by = serializers.CharField(max_length=100, required=False, help_text=(
        "Rank the leaderboard by this metric (one the run recorded, in its own direction: lowest first for "
        "log_loss, rmse, mae and mape). Default: the primary metric."))

    def validate_rank_by(self, value):
        metrics = self.context["metrics"]
        if value not in metrics:
            raise serializers.ValidationError(
                f"This run did not record {value!r}; it can be ranked by {', '.join(metrics)}.")
        return value


class ResultsSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    status = serializers.CharField(help_text="The run's status (results of an active run are partial).")
    metric = serializers.CharField(help_text="The primary metric: it picks the best variant, the one refitted.")
    greater_is_better = serializers.BooleanField()
    rank_by = serializers.CharField(help_text="The metric the leaderboard is ranked by (the primary one unless "
                                              "`rank_by` asked for another).")
    rank_by_greater_is_better = serializers.BooleanField(source="rank_by_greater")
    metrics = serializers.ListField(child=serializers.CharField())
    best_score = serializers.FloatField(allow_null=True, help_text="The best variant's mean of the primary metric.")
    partial = serializers.BooleanField(help_text="The run stopped or failed; these are the folds that finished.")
    fits = serializers.IntegerField(help_text="Fits (or epochs) scored.")
    stop_rule = serializers.CharField(allow_blank=True, help_text="The spec's stop rule in words; empty without one.")
    stop_summary = serializers.CharField(allow_blank=True, help_text=(
        'What the stop rule saved, once the run has completed: "pruned 14 of 30 variants; 52 of 150 fits saved".'))
    leaderboard = LeaderboardRowSerializer(
        many=True, help_text="Best first by the `rank_by` metric's mean; unfinished variants, then unscored ones, last."
    )


class DiagnosticsQuerySerializer(serializers.Serializer):
    branch = serializers.CharField(max_length=100, required=False, help_text="Default: the best variant's.")
    variant = serializers.IntegerField(min_value=1, max_value=MAX_BIGINT, required=False,
                                      help_text="Default: the best variant (else the first on the leaderboard).")


class DiagnosticsSerializer(serializers.Serializer):
    """results.diagnostics.for_variant: every fold's stored diagnostics and what the pages draw from them."""

    branch = serializers.CharField()
    variant = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=TASK_KINDS)
    folds = serializers.ListField(child=serializers.DictField(), help_text=(
        "Per fold, in fold order: classification has labels, confusion (counts, rows true, columns predicted), "
        "roc {fpr, tpr, auc}, pr {recall, precision, ap, base_rate}, calibration {predicted, observed, counts}; "
        "regression has rows, actual and predicted (a sample of at most 200 rows). Both may have importance."))
    importance = serializers.DictField(allow_null=True, help_text="Mean and std over folds per feature.")
    confusion = serializers.DictField(required=False, allow_null=True, help_text="Summed over folds, and normalised.")
    curve_of = serializers.CharField(required=False)
    roc = serializers.DictField(required=False, allow_null=True, help_text="Per fold, and the mean ± std band.")
    pr = serializers.DictField(required=False, allow_null=True)
    calibration = serializers.JSONField(required=False, allow_null=True)


class PromoteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, help_text="Unique among your promoted models.")
