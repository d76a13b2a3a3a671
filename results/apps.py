from django.apps import AppConfig


class ResultsConfig(AppConfig):
    """What a finished (or stopped) run is read as: the one leaderboard, diagnostics and plots, compare,
    the model download and promotion."""

    name = "results"
