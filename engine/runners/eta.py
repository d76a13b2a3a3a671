"""How long the fits left will take, fit by fit: each at the expected time of its own model.

The old estimate (engine.reporting.Clock alone) was the mean of the fits done times the fits left. A run fits
its variants in spec order, so a run whose fast models come first ("~7 s" at 50% on diamonds, with the
HistGradientBoosting variants still to come) was told the slow half costs what the fast half did.

Here every fit left is a (branch, variant) of a known estimator and parameters, and its expected seconds come
from the best evidence there is, in this order:
  1. fits of the same variant on the same branch in this run;
  2. fits of the same estimator with other parameters (this branch first, then any), scaled by the work its
     parameters ask for (work_factor: n_estimators, max_iter);
  3. a prior from earlier runs of the same estimator on the same data (`priors`: plain seconds per fit at
     work factor 1, which the web side reads from its database and passes in);
  4. the catalog's cost model (engine.runners.costs: by estimator, parameters and data shape), scaled by how this
     run's fits so far compared with it (the machine's speed, its load), or as it stands before any fit;
  5. the mean of every fit seen so far (an estimator with no cost).
Each level is less sure than the one before, so each carries a wider factor around its expectation; the
low and high ends of the run are the sums of every fit's low and high ends. The range narrows as a variant's
own fits come in. The refit of the best variant, on all rows, counts too: its variant is not known yet, so it
is the mean of the variants' expected fits, between the cheapest and the dearest.

Parallel fits divide the work by the fits at once, plus a tail: the last fits cannot be shared out, and a
list schedule ends at most (1 - 1/p) x the longest fit after the work / p (Graham's bound): the high end takes
the whole tail, the estimate half of it.
"""

import math
import statistics
from collections import Counter, defaultdict

from .costs import fit_seconds, work_factor

# Relative uncertainty of each level of evidence: the expectation e lies in [e / (1 + r), e * (1 + r)].
SAME_VARIANT_FLOOR = 0.1  # even a variant's own fits vary: the data of each fold, a loaded machine
SAME_VARIANT_ONE = 0.5  # with one fit seen; shrinks as 1/n with more
SAME_ESTIMATOR = 0.6  # other parameters of the same estimator, scaled by their work
OTHER_BRANCH = 0.9  # the same estimator, seen only on another branch (its preprocessing differs)
PRIOR = 0.6  # an earlier run on the same data (another machine load, other parameters)
COST_MODEL = 1.0  # the cost model, scaled by this run's fits: right within about a factor of two
COST_MODEL_ALONE = 2.0  # the cost model before any fit: calibrated on another machine, another load
ANY_FIT = 3.0  # an estimator not seen at all: the mean of the others says little
# A range whose ends are this close is shown as one value ("~40 s" rather than "~37–44 s").
SURE_RATIO = 1.35


def is_sure(low, high):
    """True when a range is narrow enough to be shown as one value."""
    return low is not None and high is not None and (high <= low * SURE_RATIO or high - low < 2)


class Plan:
    """The fits of a run still to do, and what the ones done took. Keys are (branch, variant)."""

    def __init__(self, fits, *, priors=None, refit=True, refit_factor=1.0, costs=None):
        """`fits`: {(branch, variant): (estimator, params, fits to do)}; `priors`: {estimator: seconds per fit
        at work factor 1}; `costs`: {(branch, variant): the cost model's seconds per fit}; `refit_factor`: how
        much longer the refit on all rows takes than one fold's fit (folds / (folds - 1): it trains on all the
        rows, each fold on all but one part)."""
        self.pending = Counter({key: n for key, (_, _, n) in fits.items() if n > 0})
        self.models = {key: (estimator, work_factor(params, estimator))
                       for key, (estimator, params, _) in fits.items()}
        self.priors = {name: float(s) for name, s in (priors or {}).items() if s and s > 0}
        self.refit_pending = refit
        self.refit_factor = refit_factor
        self.refit_key = None  # the variant to refit, once the cross-validation has chosen it
        self.costs = {key: c for key, c in (costs or {}).items() if c and c > 0}
        self.seen = defaultdict(list)  # (branch, variant) -> seconds of each fit
        self.per_work = defaultdict(list)  # (estimator, branch) -> seconds / work factor
        self.all = []

    def observe(self, key, seconds):
        """A fit of `key` took `seconds`."""
        if self.pending[key] > 0:
            self.pending[key] -= 1
        self.learn(key, seconds)

    def learn(self, key, seconds):
        """A fit of `key` took `seconds`, but it is not one of this plan's (a resume's reused fold)."""
        estimator, work = self.models.get(key, ("", 1.0))
        self.seen[key].append(seconds)
        self.per_work[(estimator, key[0])].append(seconds / work)
        self.all.append(seconds)

    def drop(self, key, fits=None):
        """Fits of `key` that will not run (an early stop, a pruned variant): all that are left, or `fits`."""
        self.pending[key] = 0 if fits is None else max(self.pending[key] - fits, 0)

    def refitting(self, key):
        """The cross-validation chose `key` to refit: its own fits say how long the refit takes."""
        self.refit_key = key

    def refitted(self):
        self.refit_pending = False

    def expected(self, key):
        """(seconds, low, high) for one fit of `key`, or None with nothing to go on."""
        estimator, work = self.models[key]
        own = self.seen.get(key)
        if own:
            mean = statistics.fmean(own)
            spread = statistics.pstdev(own) / mean if len(own) > 1 and mean > 0 else 0.0
            return _band(mean, max(SAME_VARIANT_FLOOR, spread) + SAME_VARIANT_ONE / len(own))
        same = self.per_work.get((estimator, key[0]))
        if same:
            return _band(statistics.fmean(same) * work, SAME_ESTIMATOR)
        other = [s for (name, _), values in self.per_work.items() if name == estimator for s in values]
        if other:
            return _band(statistics.fmean(other) * work, OTHER_BRANCH)
        if estimator in self.priors:
            return _band(self.priors[estimator] * work, PRIOR)
        if key in self.costs:
            ratios = [statistics.fmean(v) / self.costs[k] for k, v in self.seen.items() if k in self.costs]
            if ratios:
                return _band(self.costs[key] * statistics.median(ratios), COST_MODEL)
            return _band(self.costs[key], COST_MODEL_ALONE)
        if self.all:
            return _band(statistics.fmean(self.all), ANY_FIT)
        return None

    def remaining(self, parallel=1, units_left=None):
        """(seconds, low, high) for every fit left and the refit, with `parallel` fits at once; None with
        nothing to go on. `units_left`: what the run's clock counts as left, when fewer than this plan has
        (fits dropped from the clock only): the sums are scaled down to it."""
        parallel = max(parallel or 1, 1)
        point = low = high = 0.0
        longest = (0.0, 0.0, 0.0)
        count = 0
        for key, n in self.pending.items():
            if n <= 0:
                continue
            e = self.expected(key)
            if e is None:
                return None
            count += n
            point, low, high = point + n * e[0], low + n * e[1], high + n * e[2]
            longest = max(longest, e)
        if units_left is not None and count > units_left:
            shrink = units_left / count
            point, low, high = point * shrink, low * shrink, high * shrink
        tail = 1 - 1 / parallel
        point = point / parallel + tail * longest[0] / 2
        low = max(low / parallel, longest[1] if count else 0.0)
        high = high / parallel + tail * longest[2]
        if self.refit_pending:
            refit = self._refit()
            if refit is None:
                return None
            point, low, high = point + refit[0], low + refit[1], high + refit[2]
        return round(point, 2), round(min(low, point), 2), round(max(high, point), 2)

    def _refit(self):
        """The refit of the best variant, not known yet: the mean of the variants' fits, between the cheapest
        and the dearest, times the refit factor."""
        keys = [self.refit_key] if self.refit_key in self.models else self.models
        expected = [e for e in (self.expected(key) for key in keys) if e is not None]
        if not expected:
            return None
        f = self.refit_factor
        return (f * statistics.fmean(e[0] for e in expected), f * min(e[1] for e in expected),
                f * max(e[2] for e in expected))


def _band(mean, r):
    return mean, mean / (1 + r), mean * (1 + r)


def for_cv(table, n_folds, reused=(), priors=None, shape=None):
    """The plan of a cross-validation run: every (branch, variant) of `table` (engine.runners.cv's entries) with its
    folds still to fit (not the `reused` (branch, variant, fold) keys), and the refit. `shape`: (rows,
    columns) of the data, for the cost model."""
    reused = Counter((b, v) for b, v, _ in reused)
    fits = {(e["branch"], e["variant"]): (e["estimator"], e["params"], n_folds - reused[(e["branch"], e["variant"])])
            for e in table}
    model = {key: fit_seconds(estimator, params, *shape) for key, (estimator, params, _) in fits.items()} \
        if shape else None
    return Plan(fits, priors=priors, refit_factor=n_folds / (n_folds - 1) if n_folds > 1 else 1.0, costs=model)


def scaled(seconds, rows_then, rows_now):
    """Seconds of a fit on `rows_then` rows, expected on `rows_now`: linear in the rows, the honest middle of
    the models in the catalog (linear models below it, kernels and neighbours above)."""
    if not rows_then or not rows_now:
        return seconds
    return seconds * rows_now / rows_then if math.isfinite(seconds) else seconds
