"""The reporter interface: the only way the engine tells the world what it is doing.

The engine knows nothing about Django, the database or the channel layer. It calls these methods as things
happen, in order; an implementation decides where they go (runs.reporter.DbReporter stores and publishes
them; the base class drops them, which is what the engine tests and the benchmark baseline use).

Methods must return quickly: they are called between fits, and reporting must cost almost nothing.
"""

import time


class Reporter:
    """No-op base class. Subclasses override what they need; every argument is plain JSON-able data."""

    def step(self, name, status, detail=""):
        """A runner step (names in engine.steps) changed status: running, completed or failed."""

    def progress(self, message, *, progress, finished, total, eta_seconds=None, elapsed_seconds=None, **extra):
        """Where the run is: "Fitting fold 3/5 - Ridge", fraction 0..1, units finished of total, seconds left.

        `extra` may hold eta_low and eta_high (the range of the seconds left, engine.runners.eta), epoch, total_epochs,
        best_score, latest_score. The only event that may be coalesced:
        a later call supersedes an earlier one.
        """

    def log(self, level, message, *, step=None, fold=None, branch="", variant=None):
        """A log line (debug, info, warning, error) with its context. `step` defaults to the current step."""

    def warn(self, message):
        """A warning the run's progress record keeps (also logged). Repeats of the same text are ignored."""

    def variant(self, index, total, description, branch):
        """Starting parameter variant `index` (1-based, across all models) of `total` on `branch`."""

    def fold(self, fold, total, *, branch, variant):
        """Starting fold `fold` (1-based) of `total` for a variant."""

    def in_flight(self, fits):
        """The fits running at once now, a whole snapshot that replaces the last: [{"branch", "variant",
        "label", "fold", "worker"}], in spec order; [] once none is. Only runs that fit in parallel send it."""

    def fold_done(self, *, branch, variant, description, fold, metrics, fit_time, primary_metric, primary,
                  running_mean, finished, total, eta_seconds, best_score, diagnostics=None, reused=False,
                  eta_low=None, eta_high=None, seconds=None):
        """A fold was fitted and scored: `metrics` maps metric name to value (None where not applicable).
        `fit_time` is the fit alone; `seconds` the fold's whole cost (fit, scoring, diagnostics), what the ETA
        counts and what a later run's history reads (runs.history), None where it is not known.
        `reused`: not fitted by this run but taken from the run it resumes (finished/total count only fits).

        `eta_low`/`eta_high`: the range around `eta_seconds` (engine.runners.eta), None when there is none.
        `running_mean` is the variant's primary-metric mean so far; `best_score` the best such mean of any
        variant so far; `finished`/`total` count fits. `diagnostics`: the fold's out-of-fold diagnostics
        (engine.diagnostics.fold), or None.
        """

    def epoch_done(self, *, branch, variant, description, epoch, total_epochs, metrics, fit_time, primary_metric,
                   primary, best, finished, total, eta_seconds, best_score, eta_low=None, eta_high=None):
        """An epoch of the training runner ended with its validation `metrics`.

        `best` is this variant's best primary score so far; `best_score` the best of any variant.
        """

    def stop_decision(self, *, decision, rule, branch, variant, description, folds, total_folds, metric, mean,
                      threshold, message, pruned, pruned_variants, variants, finished, total):
        """The stop rule decided (engine/runners/stop_rules.py): `decision` "pruned" (this variant stops after `folds`
        of `total_folds`: its `mean` is worse than `threshold`) or "target_reached" (this variant's mean reached
        `threshold`; the run ends). `pruned`: the rows this decision stops, [{"branch", "variant", "rule",
        "folds", "mean", "threshold", "message"}]; `pruned_variants` of `variants` rows are pruned so far;
        `finished`/`total` count the fits that will run, after the decision."""

    def record(self, **facts):
        """Facts for the run's record: data_hash, library_versions, early_stopped, stopped_epoch, latest_score."""

    def should_stop(self):
        """True once someone asked the run to stop. Called between fits and between epochs."""
        return False


class Clock:
    """Counts finished units of work and estimates the time left from what they actually took.

    With a `plan` (engine.runners.eta.Plan: which estimator each unit left is), the estimate is each unit at the
    expected time of its own model, with a range; without one, the mean unit times the units left."""

    def __init__(self, total, plan=None):
        self.total = max(total, 1)
        self.finished = 0
        self.skipped = 0
        self.work_seconds = 0.0
        self.parallel = 1  # units running at once
        self.started = time.monotonic()
        self.plan = plan

    def add(self, seconds, units=1, key=None):
        """`units` finished in `seconds`; `key`: the plan's (branch, variant) of a single unit."""
        self.finished += units
        self.work_seconds += seconds
        if self.plan is not None and key is not None:
            self.plan.observe(key, seconds)

    def skip(self, units, key=None):
        """Units that will never run (epochs after an early stop): done, without taking time."""
        self.finished += units
        self.skipped += units
        if self.plan is not None and key is not None:
            self.plan.drop(key, units)

    def drop(self, units, key=None):
        """Units that will never run (fits a stop rule pruned): out of the total, so progress and the ETA count
        only the work that will be done; `key`: the plan's (branch, variant) they were of."""
        self.total = max(self.total - units, self.finished, 1)
        if self.plan is not None and key is not None and units:
            self.plan.drop(key, units)

    @property
    def fraction(self):
        return min(self.finished / self.total, 1.0)

    @property
    def mean_seconds(self):
        worked = self.finished - self.skipped
        return self.work_seconds / worked if worked > 0 else None

    def eta(self):
        """Seconds left: from the plan when there is one, else the mean observed seconds per unit times the
        units left, over the units running at once; None until there is something to go on."""
        return self.eta_fields()["eta_seconds"]

    def eta_fields(self):
        """{"eta_seconds", "eta_low", "eta_high"} as the reporter's events carry them (None where unknown)."""
        if self.plan is not None:
            estimate = self.plan.remaining(self.parallel, units_left=max(self.total - self.finished, 0))
            if estimate is None:
                return {"eta_seconds": None, "eta_low": None, "eta_high": None}
            point, low, high = estimate
            return {"eta_seconds": point, "eta_low": low, "eta_high": high}
        mean = self.mean_seconds
        point = None if mean is None else round(mean * max(self.total - self.finished, 0) / self.parallel, 2)
        return {"eta_seconds": point, "eta_low": None, "eta_high": None}

    def elapsed(self):
        return round(time.monotonic() - self.started, 2)
