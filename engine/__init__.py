"""The Runwatch engine: executes a run spec with scikit-learn and reports through a reporter object.

A plain module on purpose: no Django, Channels or DRF, and no runs.models. It can run in a work horse, in
a test, or in the benchmark; runs.worker.execution connects it to a Run (runs.reporter.DbReporter).

    outcome = execute(spec, reporter, workdir, dataset_path=..., bundle_path=..., bundle_sha256=...)

`spec` is a validated spec (engine.spec.validate_spec). An uploaded CSV's file is passed as
`dataset_path`; the evaluation runner's bundle as `bundle_path` with the SHA-256 recorded when it was
exported. Bundles are written under `workdir`. The CV runner fits `spec["n_jobs"]` models at once, or
`default_jobs` when the spec does not say (engine/runners/parallel.py), or, given a Dask `scheduler` address, on that
cluster (engine/runners/dask_fits.py; a spec's n_jobs 1 still fits in this process); the training runner is sequential by
nature (each epoch continues the last), and the evaluation runner scores one model.

Raises DataError (bad data, with a readable message and the failed step), RunError (anything else the user
can act on), Cancelled (reporter.should_stop() said so). The outcome is a JSON-able dict:
    summary           flat facts for the run's summary: best_score, best_variant (text), metric,
                      models_trained, duration_seconds, rows, features, and per runner a few more
    best_score        the best variant's primary-metric mean (CV), best validation score (training),
                      or the score (evaluation)
    best_variant      {"branch", "variant", "description", "estimator", "params"}
    bundle            {"path", "sha256"} of the exported model, or None
    data_hash         SHA-256 of the CSV file, or of the data arrays of a built-in or synthetic dataset
    library_versions  {"python", "scikit-learn", ...}
    timings           seconds per step
    early_stopped, stopped_epoch, latest_score   (training runner: those of the exported variant)
"""

import importlib
import time

from .errors import Cancelled, DataError, RunError
from .reporting import Clock, Reporter

__all__ = [
    "Bundle", "Cancelled", "Clock", "DataError", "Reporter", "RunError", "execute", "load_bundle", "read_metadata",
]

# Web processes import engine.spec, engine.catalog and engine.steps, and each of those runs this file first. The
# runners and the export pull in scikit-learn, pandas, numpy and joblib (1-2 s of every django.setup()), so they
# are imported where they are used: the runners by execute() (in the work horse), the export's names on first
# access (PEP 562). tests/test_light_setup.py keeps it so.
_RUNNER_MODULES = {"cv": "runners.cv", "training": "runners.training", "evaluation": "runners.evaluation"}
_LAZY_NAMES = {"Bundle": "export", "load_bundle": "export", "read_metadata": "export"}


def __getattr__(name):
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def execute(spec, reporter, workdir, *, dataset_path=None, bundle_path=None, bundle_sha256=None, default_jobs=1,
            scheduler="", resume=None, eta_priors=None):
    """Run the spec's runner. `resume` (cross-validation only): what an earlier run of the same spec finished,
    {"folds": {(branch, variant, fold): {"metrics", "fit_time", "seconds"}}, "data_sha256", "library_versions"}; those
    folds are reused, not fitted again (engine/runners/cv.py). `eta_priors` (cross-validation only): {estimator:
    seconds per fit at work factor 1} from earlier runs on the same data, for the ETA (engine/runners/eta.py)."""
    from .common import library_versions

    started = time.monotonic()
    timings = {}
    runner = spec["runner"]
    extra = {"bundle_path": bundle_path, "bundle_sha256": bundle_sha256} if runner == "evaluation" else {}
    if runner == "cv":
        # The spec's own n_jobs, else the server's default: fits at once never change the results.
        extra["n_jobs"] = spec.get("n_jobs", default_jobs)
        extra["scheduler"] = scheduler
        extra["resume"] = resume
        extra["priors"] = eta_priors
    run_runner = importlib.import_module(f".{_RUNNER_MODULES[runner]}", __name__).run
    result = run_runner(spec, reporter, workdir, dataset_path=dataset_path, timings=timings, **extra)
    best, data = result["best"], result["data"]
    summary = {
        "best_score": best["primary"],
        "best_variant": best["description"] + (f" [{best['branch']}]" if best["branch"] != "default" else ""),
        "metric": spec["metric"],
        "models_trained": result["models_trained"],
        "duration_seconds": round(time.monotonic() - started, 2),
        "rows": data.n_rows,
        "features": data.n_features,
    }
    if result.get("stop"):  # what the stop rule pruned and saved (engine/runners/stop_rules.py)
        summary.update(result["stop"])
    outcome = {
        "best_score": best["primary"],
        "best_variant": {k: best[k] for k in ("branch", "variant", "description", "estimator", "params")},
        "bundle": result["bundle"],
        "data_hash": data.sha256,
        "library_versions": library_versions(),
        "timings": timings,
        "variants": result.get("variants", []),
    }
    if runner == "training":
        summary.update(
            epochs_completed=result["epochs_completed"],
            epochs_total=result["epochs_total"],
            best_epoch=best["best_epoch"],
            early_stopped=best["early_stopped"],
            stopped_epoch=best["stopped_epoch"],
        )
        outcome.update(early_stopped=best["early_stopped"], stopped_epoch=best["stopped_epoch"], latest_score=best["latest"])
    if runner == "evaluation":
        summary["evaluated_run"] = result["evaluated_run"]
        summary.update({name: value for name, value in result["metrics"].items()})
    outcome["summary"] = summary
    return outcome
