"""The evaluation runner: score the model bundle an earlier run exported on the spec's dataset.

One unit of work, so its progress goes from 0 to 1; its statuses and events are those of every run.
"""

import time

import numpy as np

from .. import datasets, export, pipeline
from ..common import library_versions, step
from ..errors import Cancelled, DataError, RunError


def run(spec, reporter, workdir, *, dataset_path=None, bundle_path=None, bundle_sha256=None, timings):
    source_run = spec["evaluation"].get("run")
    with step(reporter, "load_bundle", timings):
        reporter.progress("Loading the model", progress=0.0, finished=0, total=1)
        if bundle_path is None:
            raise RunError(f"Run {source_run} has no exported model to evaluate.")
        bundle = export.load_bundle(bundle_path, bundle_sha256)
        meta = bundle.metadata
        if meta.get("task") != spec["task"]:
            raise RunError(f"The model of run {source_run} does {meta.get('task')}; this is a {spec['task']} run.")
        reporter.log("info", f"Loaded the model of run {source_run}: {meta['variant']['description']}")
        versions = meta.get("library_versions", {})
        if versions.get("scikit-learn") not in (None, library_versions()["scikit-learn"]):
            reporter.warn(
                f"The model was saved with scikit-learn {versions['scikit-learn']}; this worker has "
                f"{library_versions()['scikit-learn']}."
            )
    with step(reporter, "load_data", timings):
        data = datasets.load(spec["dataset"], spec.get("target", "target"), dataset_path)
        reporter.record(data_hash=data.sha256, library_versions=library_versions())
        reporter.log("info", f"Loaded {data.source} (SHA-256 {data.sha256[:12]}…)")
    with step(reporter, "validate_data", timings):
        for message in datasets.validate(data, spec):
            reporter.warn(message)
        X = features_for(meta, data)
    with step(reporter, "evaluate", timings):
        if reporter.should_stop():
            raise Cancelled()
        description = meta["variant"]["description"]
        reporter.progress(f"Evaluating {description} on {data.n_rows} rows", progress=0.0, finished=0, total=1)
        started = time.perf_counter()
        try:
            scores = pipeline.score(bundle.model, X, data.y, spec["task"])
        except Exception as e:
            raise RunError(f"Scoring the model failed: {e}") from e
        seconds = time.perf_counter() - started
        primary = scores[spec["metric"]]
        reporter.fold_done(
            branch=meta.get("branch", "default"), variant=meta["variant"]["index"], description=description, fold=1,
            metrics=scores, fit_time=round(seconds, 4), primary_metric=spec["metric"], primary=primary,
            running_mean=primary, finished=1, total=1, eta_seconds=0, best_score=primary,
        )
        reporter.progress("Evaluated", progress=1.0, finished=1, total=1, eta_seconds=0)
    return {
        "best": {
            "branch": meta.get("branch", "default"), "variant": meta["variant"]["index"], "description": description,
            "estimator": meta["variant"]["estimator"], "params": meta["variant"]["params"], "primary": primary,
            "means": scores,
        },
        "metrics": scores,
        "models_trained": 0,
        "data": data,
        "bundle": None,
        "evaluated_run": source_run,
    }


def features_for(meta, data):
    """The data's features in the shape and order the model was trained on."""
    wanted = meta.get("features") or []
    if meta.get("takes_dataframe"):
        if data.frame is None:
            raise DataError(f"The model was trained on a CSV with columns {', '.join(wanted)}; use such a CSV.")
        missing = [c for c in wanted if c not in data.frame.columns]
        if missing:
            raise DataError(f"The data lacks the column(s) the model needs: {', '.join(repr(c) for c in missing)}.")
        return data.frame[wanted]
    X = data.X
    if data.frame is not None:
        if data.text_columns:
            raise DataError(f"Column {data.text_columns[0]!r} holds text; this model takes numbers only.")
        X = data.X.to_numpy(dtype=float)
    if X.shape[1] != len(wanted):
        raise DataError(f"The model takes {len(wanted)} features; the data has {X.shape[1]}.")
    return np.asarray(X)
