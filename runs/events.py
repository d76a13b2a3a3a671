"""Run events: stored with the run's next sequence number, then published once the transaction commits.

Events are plain dicts with a `type`. The database is the truth: the channel layer delivers at most once,
so a watcher that sees a gap in `seq` reads the missing events back from RunEvent.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .models import Run, RunEvent

log = logging.getLogger(__name__)

# The JSON message types of the stream (README: "WebSocket protocol").
JOB_STATUS = "JOB_STATUS"  # queued, running, cancelling, stopped
JOB_PROGRESS = "JOB_PROGRESS"
JOB_LOG = "JOB_LOG"
JOB_METRICS = "JOB_METRICS"
JOB_COMPLETED = "JOB_COMPLETED"
JOB_FAILED = "JOB_FAILED"
FOLD_PROGRESS = "FOLD_PROGRESS"
STEP_PROGRESS = "STEP_PROGRESS"
VARIANT_PROGRESS = "VARIANT_PROGRESS"
STREAM_END = "STREAM_END"  # sent by the consumer after a terminal event; never stored

STORED_TYPES = (
    JOB_STATUS,
    JOB_PROGRESS,
    JOB_LOG,
    JOB_METRICS,
    JOB_COMPLETED,
    JOB_FAILED,
    FOLD_PROGRESS,
    STEP_PROGRESS,
    VARIANT_PROGRESS,
)
TERMINAL_TYPES = {JOB_COMPLETED, JOB_FAILED}


class RunClosed(Exception):
    """The run has reached a terminal status: nothing more may be written for it."""


def status_event_type(status):
    if status == Run.Status.COMPLETED:
        return JOB_COMPLETED
    if status == Run.Status.FAILED:
        return JOB_FAILED
    return JOB_STATUS


def is_terminal_message(message):
    return message["type"] in TERMINAL_TYPES or (
        message["type"] == JOB_STATUS and message["data"].get("status") == Run.Status.STOPPED
    )


def group_name(run_id):
    return f"run-{run_id}"


def allocate(run_id, count=1, check_open=True):
    """Reserve `count` sequence numbers for the run; returns the first. Call inside a transaction.

    The row lock serialises every writer of one run, so numbers are strictly increasing with no gaps,
    and the terminal check cannot race with the transition that stops the run.
    """
    status, last = Run.objects.select_for_update().filter(pk=run_id).values_list("status", "last_seq").get()
    if check_open and status in Run.TERMINAL:
        raise RunClosed(f"Run {run_id} is {status}; nothing more is written for it.")
    Run.objects.filter(pk=run_id).update(last_seq=F("last_seq") + count)
    return last + 1


def append(run, type, data, check_open=True):
    """Store one event and publish it after the transaction commits."""
    return append_many(run, [(type, data)], check_open=check_open)[0]


def append_many(run, items, check_open=True):
    """Store several events with consecutive numbers in one insert; publish them in order after commit."""
    run_id = run.pk if isinstance(run, Run) else run
    with transaction.atomic():
        first = allocate(run_id, len(items), check_open=check_open)
        now = timezone.now()
        rows = [
            RunEvent(run_id=run_id, seq=first + i, type=type, data=data, created=now)
            for i, (type, data) in enumerate(items)
        ]
        RunEvent.objects.bulk_create(rows)
        messages = [row.to_message() for row in rows]
        transaction.on_commit(lambda: publish(run_id, messages))
    return rows


def events_after(run_id, after=0, limit=None):
    qs = RunEvent.objects.filter(run_id=run_id, seq__gt=after).order_by("seq")
    if limit:
        qs = qs[:limit]
    return [e.to_message() for e in qs]


# --- Publishing -------------------------------------------------------------------------------------------


class LayerPublisher:
    """Publishes from sync code in a web process. Each call opens a short-lived loop: fine per request,
    wrong for a worker that emits thousands of events, which installs a ThreadedPublisher instead."""

    def send(self, run_id, messages):
        layer = get_channel_layer()
        for message in messages:
            async_to_sync(layer.group_send)(group_name(run_id), {"type": "run.event", "event": message})

    def flush(self, timeout=5.0):
        return True


_publisher = LayerPublisher()


def use_publisher(publisher):
    global _publisher
    previous, _publisher = _publisher, publisher
    return previous


def publish(run_id, messages):
    try:
        _publisher.send(run_id, messages)
    except Exception:
        # The event is already stored; watchers will read it back from the database. Never let a Redis
        # hiccup fail the write that produced the event.
        log.exception("Could not publish events for run %s", run_id)
