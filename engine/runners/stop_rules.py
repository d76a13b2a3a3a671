"""Stop rules: which rows of a cross-validation run stop before their last fold, and when the run ends early.

A row is a leaderboard row, one (branch, variant) pair, numbered here 0..n-1 in spec order (branches outer,
variants inner, as engine/runners/cv.py builds its table). Folds are numbered from 1. The rules (the spec's
`stop_rule`, engine/spec_models.py checks it):
- median {"after_folds": k}: once a row has k or more folds (and still folds to go), it is pruned when its
  running mean is worse than the median of the running means, at the same fold, of the rows before it;
- successive_halving {"factor": f}: folds are the resource. Rung 0 gives every row one fold, each next rung
  multiplies the folds by f (capped at the run's folds) for the best 1/f of the rows of the rung before, until
  the survivors have every fold (HalvingGridSearchCV with folds as the resource);
- target {"value": v}: the run ends once a row's full mean reaches v; the rows still unfinished stop there.

Deterministic whatever runs at once: a rule sees each fold in the order a sequential run would give it, so the
rows pruned, and the folds stored, are the same with n_jobs 1, 8 or a Dask cluster. The caller `offer`s each
finished fit; the rule says which to store now, which to hold (a later fold of a row whose earlier decision is
not due yet), which to discard (of a row pruned meanwhile), and what it decided. Median waits only for the rows
before at the same fold; target for the rows before to finish; successive halving decides between rungs, so the
caller fits rung by rung (`waves`). Plain Python: the parent of the fits runs it, and the tests call it.
"""

import math
import statistics

from .. import scoring

KINDS = ("median", "successive_halving", "target")


def make(rule, n_rows, n_folds, greater):
    """The rule object for the spec's `stop_rule` (None: no rule, every fit runs)."""
    if not rule:
        return Rule(n_rows, n_folds, greater)
    kind = rule["kind"]
    if kind == "median":
        return Median(n_rows, n_folds, greater, rule["after_folds"])
    if kind == "successive_halving":
        return Halving(n_rows, n_folds, greater, rule["factor"])
    return Target(n_rows, n_folds, greater, rule["value"])


def describe(rule):
    """The rule in words, for the log and the spec's review."""
    if rule["kind"] == "median":
        return (f"median from fold {rule.get('after_folds')}: a variant whose running mean is below the median of the "
                "variants before it at the same fold is pruned")
    if rule["kind"] == "successive_halving":
        return (f"successive halving by {rule.get('factor')}: every variant gets one fold, the best 1/{rule.get('factor')} "
                "get more, until the survivors have every fold")
    return f"target {rule.get('value')}: the run ends once a variant's mean over every fold reaches it"


class Rule:
    """No rule: one wave of every fit, each stored as it lands, nothing pruned."""

    kind = None

    def __init__(self, n_rows, n_folds, greater):
        self.n_rows, self.n_folds, self.greater = n_rows, n_folds, greater
        self.scores = [{} for _ in range(n_rows)]  # row -> {fold: primary value} of the folds stored
        self.pruned = {}  # row -> its decision
        self.ended = None  # the decision that ended the run (target)
        self._held = {}  # (row, fold) -> (value, item): landed, not yet stored

    # --- What to fit --------------------------------------------------------------------------------------

    def waves(self):
        """Lists of (row, fold) to fit, in spec order; the next wave is computed once the last is stored."""
        yield [(row, fold) for row in range(self.n_rows) for fold in range(1, self.n_folds + 1)]

    def wanted(self, row, fold):
        """Whether the fit (row, fold) may still start, or be stored once it lands."""
        return self.ended is None and row not in self.pruned

    def end_wave(self):
        """The decisions taken once a wave is stored (successive halving's cut)."""
        return []

    # --- What landed ---------------------------------------------------------------------------------------

    def offer(self, row, fold, value, item):
        """A fit landed. Returns, in order, ("store", row, fold, item), ("discard", row, fold, item) and
        ("decision", decision) actions; a held fit comes back as "store" or "discard" in a later answer."""
        if not self.wanted(row, fold):
            return [("discard", row, fold, item)]
        self._held[row, fold] = (value, item)
        actions = []
        progress = True
        while progress:
            progress = False
            for key in sorted(k for k in self._held if self._due(*k)):
                if key not in self._held:
                    continue
                value, item = self._held.pop(key)
                if not self.wanted(*key):
                    actions.append(("discard", *key, item))
                    continue
                self.scores[key[0]][key[1]] = value
                actions.append(("store", *key, item))
                actions += [("decision", d) for d in self._decide(*key)]
                progress = True
        for key in [k for k in self._held if not self.wanted(*k)]:
            actions.append(("discard", *key, self._held.pop(key)[1]))
        return actions

    def _due(self, row, fold):
        return True

    def _decide(self, row, fold):
        return []

    # --- Helpers -------------------------------------------------------------------------------------------

    def mean_at(self, row, fold):
        """The row's running mean over its folds 1..fold (the finite ones)."""
        scores = self.scores[row]
        return scoring.mean(scores[f] for f in range(1, fold + 1) if f in scores)

    def complete(self, row):
        return len(self.scores[row]) == self.n_folds

    def _prune(self, row, folds, mean, threshold, **extra):
        decision = {"decision": "pruned", "rule": self.kind, "row": row, "folds": folds,
                    "total_folds": self.n_folds, "mean": mean, "threshold": threshold, **extra}
        self.pruned[row] = decision
        return decision

    def summary(self, reused=0):
        """Counts for the run's summary: rows pruned, and the fits no one needed."""
        stored = sum(len(s) for s in self.scores)
        return {"stop_rule": self.kind, "variants": self.n_rows, "pruned_variants": len(self.pruned),
                "fits_total": self.n_rows * self.n_folds, "fits_stored": stored,
                "target_reached": self.ended is not None}


class Median(Rule):
    kind = "median"

    def __init__(self, n_rows, n_folds, greater, after_folds):
        super().__init__(n_rows, n_folds, greater)
        self.after_folds = after_folds
        # frontier[fold]: the first row that has neither stored that fold nor been pruned before it. A row's
        # fold is due once every row before it is past it: then it is compared with what a sequential run saw.
        self.frontier = [0] * (n_folds + 2)

    def _settled(self, row, fold):
        return fold in self.scores[row] or (row in self.pruned and self.pruned[row]["folds"] < fold)

    def _advance(self):
        for fold in range(1, self.n_folds + 1):
            while self.frontier[fold] < self.n_rows and self._settled(self.frontier[fold], fold):
                self.frontier[fold] += 1

    def _due(self, row, fold):
        self._advance()
        return self.frontier[fold] == row and (fold == 1 or fold - 1 in self.scores[row])

    def _decide(self, row, fold):
        if fold < self.after_folds or fold >= self.n_folds:
            return []  # too early to judge, or nothing left to save
        others = [m for u in range(row) if fold in self.scores[u] and scoring.finite(m := self.mean_at(u, fold))]
        if not others:
            return []
        median, mean = statistics.median(others), self.mean_at(row, fold)
        if not scoring.better(median, mean, self.greater):
            return []
        return [self._prune(row, fold, mean, median, compared=len(others))]


class Target(Rule):
    kind = "target"

    def __init__(self, n_rows, n_folds, greater, value):
        super().__init__(n_rows, n_folds, greater)
        self.value = value
        self.first_open = 0  # the first row not finished: rows are stored one after another, as sequentially

    def _due(self, row, fold):
        while self.first_open < self.n_rows and self.complete(self.first_open):
            self.first_open += 1
        return self.first_open == row and (fold == 1 or fold - 1 in self.scores[row])

    def _decide(self, row, fold):
        if fold != self.n_folds:
            return []
        mean = self.mean_at(row, fold)
        if not scoring.finite(mean) or not (mean >= self.value if self.greater else mean <= self.value):
            return []
        # Rows after this one may hold partial folds only in a sequential run's order: none. They stop here.
        stopped = [u for u in range(self.n_rows) if not self.complete(u)]
        self.ended = {"decision": "target_reached", "rule": self.kind, "row": row, "folds": fold,
                      "total_folds": self.n_folds, "mean": mean, "threshold": self.value, "stopped": stopped}
        for u in stopped:
            self.pruned[u] = {"decision": "pruned", "rule": self.kind, "row": u, "folds": len(self.scores[u]),
                              "total_folds": self.n_folds, "mean": self.mean_at(u, self.n_folds),
                              "threshold": self.value, "by_target": True}
        return [self.ended]


class Halving(Rule):
    kind = "successive_halving"

    def __init__(self, n_rows, n_folds, greater, factor):
        super().__init__(n_rows, n_folds, greater)
        self.factor = factor
        self.rungs = rungs(n_folds, factor)
        self._rung = 0

    def waves(self):
        done = 0
        for number, folds in enumerate(self.rungs):
            self._rung = number
            yield [(row, fold) for row in range(self.n_rows) if row not in self.pruned
                   for fold in range(done + 1, folds + 1)]
            done = folds

    def end_wave(self):
        folds = self.rungs[self._rung]
        if folds >= self.n_folds:
            return []  # the last rung: the survivors have every fold
        alive = [row for row in range(self.n_rows) if row not in self.pruned]
        keep = max(1, math.ceil(len(alive) / self.factor))
        ranked = scoring.rank(alive, self.greater, score=lambda row: self.mean_at(row, folds))
        cut = self.mean_at(ranked[keep - 1], folds)
        return [self._prune(row, folds, self.mean_at(row, folds), cut, kept=keep, of=len(alive))
                for row in sorted(ranked[keep:])]


def rungs(n_folds, factor):
    """The folds each rung gives its rows: 1, f, f², ... up to n_folds (always ending at n_folds)."""
    out, folds = [], 1
    while folds < n_folds:
        out.append(folds)
        folds *= factor
    return out + [n_folds]
