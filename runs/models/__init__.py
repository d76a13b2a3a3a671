"""The runs app's models: the Run and its state machine (run.py), and what a run records as it works
(records.py). Importers use `runs.models`, as with one module."""

from .records import FoldDiagnostic, FoldMetric, LogEntry, RunEvent, RunStep, appended_to_run
from .run import (IllegalTransition, Run, RunQuerySet, allocate_seqs, append_event, append_events, events_after,
                  slot_freed)

__all__ = [
    "FoldDiagnostic", "FoldMetric", "IllegalTransition", "LogEntry", "Run", "RunEvent", "RunQuerySet", "RunStep",
    "allocate_seqs", "append_event", "append_events", "appended_to_run", "events_after", "slot_freed",
]
