"""The ETA at 50% of a run whose models differ ~10x in fit time, against the time the run really had left,
the old way (the mean fit so far times the fits left) and the new (engine.runners.eta: each fit left at its own
model's expected time); and the Review step's estimate before launch against the run's whole time.

    python bench/eta.py              # 3 repeats per case, one native thread per fit
    python bench/eta.py --quick      # 1 repeat: a smoke run, not figures to record
    python bench/eta.py --threads 0  # native threads as n_jobs 1 leaves them: a thread per core

One thread by default, as each fit of a run with n_jobs -1 (the default) has on 2 cores: with a thread per
core, HistGradientBoosting's OpenMP threads wait on each other whenever another process holds a core, and its
fits vary 10x from one run to the next with the machine's load, which no estimate made before them can know.

`engine.execute` with a Reporter that records every fold_done event, no Django, n_jobs 1, 5 folds, on synthetic
binary classification data (6,000 x 10). The grid lists the fast model first, as a user's search would: 3
LogisticRegression variants, then 3 HistGradientBoostingClassifier variants, so at 50% every fast fit is done and no slow one has started;
the new ETA must then take the slow fits from the cost model (engine.runners.costs), scaled by how the fast fits
compared with it. Case "history": the same run with priors from an earlier run's folds' whole cost (as
runs.history.fit_seconds reads them), so the slow model's time comes from history. The old and new ETA come from
the same events of the same runs, so they are measured side by side; the runs of both cases alternate.
Error = ETA - the real seconds from that event to the run's end (refit and export included). Last, the
run's overhead: its duration less its folds' whole cost and its refit (loading and checking the data, the
steps' bookkeeping, the export), the figure experiments.describe.RUN_OVERHEAD_SECONDS stands for.
"""

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import execute
from engine.runners import costs  # noqa: E402
from engine.reporting import Reporter  # noqa: E402
from engine.spec import validate_spec, variants  # noqa: E402
from experiments.describe import RUN_OVERHEAD_SECONDS, estimate  # noqa: E402

ROWS, COLUMNS = 6000, 10
SPEC = {
    "runner": "cv", "task": "classification", "target": "target", "metric": "accuracy", "seed": 0, "n_jobs": 1,
    "dataset": {"kind": "synthetic", "generator": "classification", "n_samples": ROWS, "n_features": COLUMNS,
                "noise": 0.1, "seed": 0, "n_classes": 2},
    "preprocessing": ["standard_scaler"],
    "models": [{"estimator": "LogisticRegression", "params": {"C": [0.1, 1.0, 10.0]}},
               {"estimator": "HistGradientBoostingClassifier", "params": {"learning_rate": [0.05, 0.1, 0.2]}}],
    "cv": {"kind": "stratified_kfold", "folds": 5, "shuffle": True, "seed": 0},
}


class Recorder(Reporter):
    """Each fold_done's time, fits finished and total, the plan's ETA, and the old ETA from the same moment."""

    def __init__(self):
        self.events, self.work = [], 0.0
        self.last = None

    def fold(self, fold, total, *, branch, variant):
        self.last = time.monotonic()

    def fold_done(self, *, finished, total, eta_seconds, eta_low=None, eta_high=None, fit_time, seconds=None, **_):
        now = time.monotonic()
        self.work += now - self.last  # the fit, its scoring and its diagnostics, as the old Clock counted them
        old = self.work / finished * (total - finished)
        self.events.append({"at": now, "finished": finished, "total": total, "new": eta_seconds,
                            "low": eta_low, "high": eta_high, "old": old, "fit_time": fit_time,
                            "seconds": seconds})


def run(spec, priors=None):
    recorder = Recorder()
    with tempfile.TemporaryDirectory() as scratch:
        started = time.monotonic()
        outcome = execute(spec, recorder, Path(scratch), eta_priors=priors)
        ended = time.monotonic()
    overhead = ended - started - sum(e["seconds"] for e in recorder.events) - outcome["timings"]["refit_best"]
    return recorder.events, ended - started, ended, overhead


def at_half(events, ended):
    """The event at 50% of the fits, with the seconds the run really had left from it."""
    event = next(e for e in events if e["finished"] * 2 >= e["total"])
    return dict(event, real=ended - event["at"])


def priors_from(spec, events):
    """{estimator: seconds per fit at work factor 1}, as runs.history.fit_seconds reads them: the median of the
    folds' whole cost (fit, scoring, diagnostics: FoldMetric.seconds) over the work their parameters ask for."""
    by_variant = {v["index"]: v for v in variants(spec)}
    per = defaultdict(list)
    order = [(i + 1) for i in range(len(by_variant)) for _ in range(spec["cv"]["folds"])]
    for event, index in zip(events, order):  # n_jobs 1: the folds land in spec order
        v = by_variant[index]
        per[v["estimator"]].append(event["seconds"] / costs.work_factor(v["params"], v["estimator"]))
    return {name: statistics.median(s) for name, s in per.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 repeat")
    parser.add_argument("--threads", type=int, default=1, help="native threads per fit (0: uncapped)")
    args = parser.parse_args()
    import sklearn.ensemble  # noqa: F401 - loads OpenMP and BLAS first: threadpool_limits caps only what is loaded

    with threadpool_limits(args.threads) if args.threads else contextlib.nullcontext():
        measure(1 if args.quick else args.repeats, args.threads)


def measure(repeats, threads):
    spec = validate_spec(SPEC)
    review, review_low, review_high, how = estimate(spec, {}, (ROWS, COLUMNS), default_jobs=1)

    events, _, _, _ = run(spec)  # warm-up (imports, caches), and the earlier run the history case reads
    priors = priors_from(spec, events)
    fast, slow = (statistics.median(e["fit_time"] for e in events[i:i + 15]) for i in (0, 15))
    print(f"LogisticRegression fit {fast:.3f} s, HistGradientBoostingClassifier fit {slow:.3f} s: {slow / fast:.0f}x; "
          f"{len(events)} fits + refit, n_jobs 1, {threads or 'uncapped'} native threads, {ROWS:,} x {COLUMNS}")
    rows = {"no history": [], "history": []}
    totals, overheads = [], []
    for _ in range(repeats):
        for case in rows:
            events, total, ended, overhead = run(spec, priors if case == "history" else None)
            rows[case].append(at_half(events, ended))
            overheads.append(overhead)
            if case == "no history":
                totals.append(total)

    print(f"{'case':<11} {'real left':>9} {'old ETA':>8} {'old |err|':>10} {'new ETA':>8} {'range':>12} "
          f"{'new |err|':>10} {'new/old':>8} {'spread':>12}")
    for case, found in rows.items():
        old = [abs(r["old"] - r["real"]) for r in found]
        new = [abs(r["new"] - r["real"]) for r in found]
        ratio = [n / o for n, o in zip(new, old)]
        m = lambda key: statistics.median(r[key] for r in found)  # noqa: E731
        inside = sum(r["low"] <= r["real"] <= r["high"] for r in found if r["low"] is not None)
        print(f"{case:<11} {m('real'):>8.1f}s {m('old'):>7.1f}s {statistics.median(old):>9.1f}s "
              f"{m('new'):>7.1f}s {m('low'):>5.1f}-{m('high'):<5.1f}s {statistics.median(new):>9.1f}s "
              f"{statistics.median(ratio):>8.2f} {min(ratio):>5.2f}-{max(ratio):<6.2f}  "
              f"real in range {inside}/{len(found)}", flush=True)
    print(f"Review estimate before launch (no history, {how}): {review:.1f} s ({review_low:.1f}-{review_high:.1f}); "
          f"actual total median {statistics.median(totals):.1f} s ({min(totals):.1f}-{max(totals):.1f}), "
          f"ratio {review / statistics.median(totals):.2f}")
    print(f"Run overhead besides the folds and the refit: median {statistics.median(overheads):.2f} s "
          f"({min(overheads):.2f}-{max(overheads):.2f}); RUN_OVERHEAD_SECONDS is {RUN_OVERHEAD_SECONDS}")


if __name__ == "__main__":
    main()
