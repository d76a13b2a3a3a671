"""Run events: stored with the run's next sequence number, then published once the transaction commits.

Events are plain dicts with a `type`. The database is the truth: the channel layer delivers at most once,
so a watcher that sees a gap in `seq` reads the missing events back from RunEvent.
"""

import logging
from typing import Required, TypedDict

import ujson
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)


def to_json(value):
    """JSON text of an event or its data: one encoder for what is stored (runs.rows) and what the stream sends
    (live.fanout, live.consumers), so a replayed event is the same text as the live one. ujson (which daphne's
    autobahn already requires) is about four times as fast as json.dumps, and this runs for every event; its
    text differs only in spacing and float spelling (1e-5 for 1e-05), and NaN and Infinity pass as before."""
    return ujson.dumps(value, escape_forward_slashes=False)

# --- The schema: every event type, its payload, and the one builder that makes it ------------------------
# docs/websocket-protocol.md describes the same types for clients. The reporter and the status transitions
# build payloads here; the fragments, the CLI and the client read them back through these names.

JOB_STATUS = "JOB_STATUS"  # queued, running, cancelling, stopped
JOB_PROGRESS = "JOB_PROGRESS"
JOB_LOG = "JOB_LOG"
JOB_METRICS = "JOB_METRICS"
JOB_COMPLETED = "JOB_COMPLETED"
JOB_FAILED = "JOB_FAILED"
FOLD_PROGRESS = "FOLD_PROGRESS"
STEP_PROGRESS = "STEP_PROGRESS"
VARIANT_PROGRESS = "VARIANT_PROGRESS"
FITS_IN_FLIGHT = "FITS_IN_FLIGHT"  # the fits running at once, when a run fits in parallel
STOP_RULE = "STOP_RULE"  # the spec's stop rule pruned a variant, or ended the run at its target
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
    FITS_IN_FLIGHT,
    STOP_RULE,
)
TERMINAL_TYPES = {JOB_COMPLETED, JOB_FAILED}
STATUS_TYPES = {JOB_STATUS, JOB_COMPLETED, JOB_FAILED}  # the events that change a run's status
# Statuses as stored on Run (runs.models.Run.Status); spelled out so this module needs no models.
STOPPED, COMPLETED, FAILED = "stopped", "completed", "failed"


class StatusData(TypedDict, total=False):
    """JOB_STATUS, JOB_COMPLETED and JOB_FAILED: a status change. `message` says why (failed, stopped)."""

    status: Required[str]
    previous: Required[str | None]  # None for the first, queued
    message: str
    summary: dict  # JOB_COMPLETED: best_score, best_variant, metric, models_trained, duration_seconds, ...
    partial: bool  # stopped or failed with some fold results kept
    has_model: bool  # JOB_COMPLETED: a model bundle was exported
    runner: str  # JOB_COMPLETED: cv, training or evaluation
    steps: list  # terminal: the steps that were running and were cut short, [{"step", "label", "status"}]
    finished_fits: int  # terminal: the fits done and planned when it ended (the progress line says so)
    total_fits: int
    elapsed_seconds: float  # terminal, once it had started: its duration


class ProgressData(TypedDict, total=False):
    progress: Required[float]  # 0..1
    message: Required[str]
    finished_fits: Required[int]
    total_fits: Required[int]
    eta_seconds: float | None
    eta_low: float | None  # the range of the seconds left (engine.runners.eta); None when there is none
    eta_high: float | None
    elapsed_seconds: float | None
    epoch: int  # training runner only, with the rest below
    total_epochs: int
    best_score: float | None
    latest_score: float | None


class LogData(TypedDict):
    level: str  # debug, info, warning, error
    message: str
    step: str
    fold: int | None
    branch: str
    variant: int | None


class MetricsData(TypedDict, total=False):
    """One fit scored: a fold (cross-validation, evaluation) or an epoch (training), with the run's state
    after it, so a page can show the whole picture from this event alone."""

    branch: Required[str]
    variant: Required[int]
    variant_description: Required[str]
    fold: int | None
    epoch: int
    total_epochs: int
    fit_time: Required[float]  # the fit alone
    seconds: float | None  # the fold's fit, scoring and diagnostics: what the ETA and runs.history count
    metrics: Required[dict]  # every metric of the task by name
    primary_metric: Required[str]
    primary: Required[float | None]
    running_mean: Required[float | None]  # this variant's mean so far (its best epoch, for training)
    best: float | None  # training: this variant's best epoch score
    finished_fits: Required[int]
    total_fits: Required[int]
    eta_seconds: float | None
    eta_low: float | None  # as in ProgressData
    eta_high: float | None
    elapsed_seconds: float | None
    best_score: float | None  # the best variant's mean so far (engine.scoring)
    message: str  # the latest progress message ("Fitting fold 3/5 - Ridge")
    reused: bool  # a resume's fold taken from the run it resumes (present, True, only then)


class FoldData(TypedDict):
    fold: int
    total: int
    branch: str
    variant: int


class StepData(TypedDict):
    step: str
    label: str
    status: str  # pending, running, completed, failed, interrupted
    detail: str
    elapsed_seconds: float | None  # 0 when it starts; its duration when it ends


class VariantData(TypedDict):
    index: int
    total: int
    description: str
    branch: str


class InFlightFit(TypedDict):
    branch: str
    variant: int
    label: str  # the variant's description, with its branch when there are several
    fold: int
    worker: str  # where it runs: "host pid 123" on this machine, a Dask worker's address on a cluster


class InFlightData(TypedDict):
    fits: list[InFlightFit]  # the whole set, in spec order; it replaces the last one ([]: none running)


class PrunedRow(TypedDict):
    branch: str
    variant: int
    rule: str  # median, successive_halving or target
    folds: int  # the folds it had when it stopped (its partial mean is over these)
    mean: float | None
    threshold: float | None
    message: str


class StopRuleData(TypedDict):
    """One decision of the spec's stop rule (engine/runners/stop_rules.py), as the log and the step panel say it."""

    decision: str  # "pruned": this variant stops; "target_reached": its full mean reached the target, the run ends
    rule: str
    branch: str
    variant: int
    description: str
    folds: int  # after how many of its folds the decision was taken
    total_folds: int
    metric: str
    mean: float | None  # its running mean (over `folds`)
    threshold: float | None  # the median, the rung's cut-off, or the target it is compared with
    message: str  # "RF(max_depth=4) pruned after fold 2/5: mean accuracy 0.7100 < median 0.7800"
    pruned: list[PrunedRow]  # the variants this decision stops (one, or every unfinished one at the target)
    pruned_variants: int  # pruned so far, of `variants` (branch x variant rows)
    variants: int
    finished_fits: int  # fits done, and fits that will run now that these are pruned
    total_fits: int


PAYLOADS = {
    JOB_STATUS: StatusData, JOB_COMPLETED: StatusData, JOB_FAILED: StatusData, JOB_PROGRESS: ProgressData,
    JOB_LOG: LogData, JOB_METRICS: MetricsData, FOLD_PROGRESS: FoldData, STEP_PROGRESS: StepData,
    VARIANT_PROGRESS: VariantData, FITS_IN_FLIGHT: InFlightData, STOP_RULE: StopRuleData,
}


def status_event(status, previous, **extra):
    """(type, data) for a status change: JOB_COMPLETED, JOB_FAILED, or JOB_STATUS for the others."""
    return status_event_type(status), StatusData(status=status, previous=previous, **extra)


def progress(message, *, progress, finished_fits, total_fits, eta_seconds=None, eta_low=None, eta_high=None,
             elapsed_seconds=None, **training):
    return JOB_PROGRESS, ProgressData(
        progress=round(progress, 4), message=message, finished_fits=finished_fits, total_fits=total_fits,
        eta_seconds=eta_seconds, eta_low=eta_low, eta_high=eta_high, elapsed_seconds=elapsed_seconds, **training,
    )


def log_line(level, message, *, step="", fold=None, branch="", variant=None):
    return JOB_LOG, LogData(level=level, message=message, step=step, fold=fold, branch=branch, variant=variant)


_METRICS_FIELDS = frozenset(MetricsData.__annotations__)


def metrics(**data):
    unknown = data.keys() - _METRICS_FIELDS
    if unknown:
        raise TypeError(f"Not a JOB_METRICS field: {', '.join(sorted(unknown))}")
    return JOB_METRICS, MetricsData(**data)


def fold(fold, total, *, branch, variant):
    return FOLD_PROGRESS, FoldData(fold=fold, total=total, branch=branch, variant=variant)


def in_flight(fits):
    return FITS_IN_FLIGHT, InFlightData(fits=[InFlightFit(branch=f["branch"], variant=f["variant"], label=f["label"],
                                                           fold=f["fold"], worker=f["worker"]) for f in fits])


def stop_rule(*, finished, total, **data):
    return STOP_RULE, StopRuleData(finished_fits=finished, total_fits=total, **data)


def step(name, label, status, detail="", elapsed_seconds=None):
    return STEP_PROGRESS, StepData(step=name, label=label, status=status, detail=detail, elapsed_seconds=elapsed_seconds)


def variant(index, total, description, branch):
    return VARIANT_PROGRESS, VariantData(index=index, total=total, description=description, branch=branch)


class RunClosed(Exception):
    """The run has reached a terminal status: nothing more may be written for it."""


def status_event_type(status):
    if status == COMPLETED:
        return JOB_COMPLETED
    if status == FAILED:
        return JOB_FAILED
    return JOB_STATUS


def is_terminal_message(message):
    return message["type"] in TERMINAL_TYPES or (
        message["type"] == JOB_STATUS and message["data"].get("status") == STOPPED
    )


def group_name(run_id):
    return f"run-{run_id}"


# The runs list streams (live/listfeed.py): a user's list watches the group of the runs they own; staff watch
# the staff group, which carries every run. Neither is per run, so a run launched elsewhere reaches the list.
STAFF_GROUP = "runs-staff"
ROW_LAYER_TYPE = "runs.row"
# A batch of log lines alone changes nothing a list row shows: it sends no row message.
ROW_TYPES = frozenset(STORED_TYPES) - {JOB_LOG}


def owner_group(owner_id):
    return f"runs-owner-{owner_id}"


def row_messages(run_id, owner_id, messages):
    """(group, message) pairs telling the list streams that a run's row changed, once per write batch.

    Compact on purpose: only the run and its last seq. The daphne hub reads the row from the database once
    per group and renders it once for every list watcher of that group; each message names its group because
    a process watching both groups receives both."""
    if owner_id is None or not any(m.get("type") in ROW_TYPES for m in messages):
        return []
    last = messages[-1].get("seq")
    return [(group, {"type": ROW_LAYER_TYPE, "group": group, "run": run_id, "seq": last})
            for group in (owner_group(owner_id), STAFF_GROUP)]


def layer_sends(run_id, messages, owner_id=None):
    """Every channel-layer send for one write batch: the run page's group, then the list groups."""
    return [(group_name(run_id), layer_message(run_id, messages))] + row_messages(run_id, owner_id, messages)


async def send_all(layer, sends):
    for group, message in sends:
        await layer.group_send(group, message)


# --- Publishing -------------------------------------------------------------------------------------------

# One channel-layer message per write batch, not one per event: {"type": "run.events", "run": id,
# "events": [stored messages, seq order]}. Each daphne process receives it once (live/fanout.py) and fans it
# out to its watchers; the WebSocket protocol itself is unchanged (one JSON message per event).
LAYER_TYPE = "run.events"


def layer_message(run_id, messages):
    return {"type": LAYER_TYPE, "run": run_id, "events": list(messages)}


def layer_events(message):
    """The stored messages a run's channel-layer message carries."""
    if message.get("type") == LAYER_TYPE:
        return [m for m in message.get("events") or [] if isinstance(m, dict)]
    return []


class LayerPublisher:
    """Publishes from sync code in a web process. Each call opens a short-lived loop: fine per request,
    wrong for a worker that emits thousands of events, which installs a ThreadedPublisher instead."""

    def send(self, run_id, messages, owner_id=None):
        if messages:
            async_to_sync(send_all)(get_channel_layer(), layer_sends(run_id, messages, owner_id))

    def flush(self, timeout=5.0):
        return True


_publisher = LayerPublisher()


def use_publisher(publisher):
    global _publisher
    previous, _publisher = _publisher, publisher
    return previous


def flush(timeout=5.0):
    """Wait until this process's publisher has sent what it holds (a work horse about to exit)."""
    return _publisher.flush(timeout=timeout)


def publish(run_id, messages, owner_id=None):
    """`owner_id` (when known) also tells the owner's and the staff's runs lists (row_messages)."""
    try:
        _publisher.send(run_id, messages, owner_id=owner_id)
    except Exception:
        # The event is already stored; watchers will read it back from the database. Never let a Redis
        # hiccup fail the write that produced the event.
        log.exception("Could not publish events for run %s", run_id)
