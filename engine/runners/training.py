"""The training runner: estimators with partial_fit learn epoch by epoch on a training split, are scored on a
held-out validation split after every epoch, and stop early once the primary metric has not improved for
`patience` epochs. Each variant keeps its best epoch; the best of those is exported.

The preprocessing (scalers, encoders…) cannot learn incrementally, so it is fitted once on the training
split; only the estimator is trained in epochs.
"""

import copy
import time

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from ..spec import branches, describe_variant, variants

from .. import export, pipeline
from . import eta
from ..common import FitWarnings, build_for, load_and_validate, step
from ..errors import Cancelled, RunError
from ..reporting import Clock


def run(spec, reporter, workdir, *, dataset_path=None, timings):
    data = load_and_validate(spec, reporter, timings, dataset_path)
    with step(reporter, "train", timings):
        trained = train(spec, data, reporter)
        best = trained["best"]
        if best is None or best["primary"] is None:
            raise RunError(f"No variant could be scored by {spec['metric']}; choose another metric.")
    with step(reporter, "export", timings):
        meta = export.metadata(spec, data, best, variants=trained["variants"], training=_facts(best))
        bundle = export.write_bundle(workdir, best["model"], meta)
        reporter.log("info", f"Exported the model bundle (SHA-256 {bundle['sha256'][:12]}…)")
    return {**trained, "data": data, "bundle": bundle}


def train(spec, data, reporter):
    task, metric, seed = spec["task"], spec["metric"], spec["seed"]
    epochs, patience = spec["training"]["epochs"], spec["training"]["patience"]
    rows = np.arange(data.n_rows)
    train_rows, val_rows = train_test_split(
        rows,
        test_size=spec["training"]["validation_fraction"],
        random_state=seed,
        stratify=data.y if task == "classification" else None,
    )
    X_train, y_train = pipeline.take(data.X, train_rows), data.y[train_rows]
    X_val, y_val = pipeline.take(data.X, val_rows), data.y[val_rows]
    classes = np.unique(data.y) if task == "classification" else None
    chains, all_variants = branches(spec), variants(spec)
    # Said once, so nobody waits for a second core: an epoch needs the one before it.
    reporter.log("info", "Training runs its epochs one after another in one process, variant after variant")
    # Each epoch left at the expected time of its own variant's epochs (engine.runners.eta); no refit: the best epoch's
    # model is the one exported. One epoch is one pass whatever max_iter says, so no work factor ({} params).
    plan = eta.Plan({(branch, v["index"]): (v["estimator"], {}, epochs) for branch, _ in chains
                     for v in all_variants}, refit=False)
    clock = Clock(len(chains) * len(all_variants) * epochs, plan)
    fit_warnings = FitWarnings(reporter)
    rng = np.random.default_rng(seed)
    results, best, best_score = [], None, None

    for branch, steps in chains:
        for variant in all_variants:
            description = describe_variant(variant)
            label = variant["label"] + (f" [{branch}]" if len(chains) > 1 else "")
            reporter.variant(variant["index"], len(all_variants), description, branch)
            model = build_for(data, steps, variant, spec)
            preprocess, estimator = (model[:-1] if len(model) > 1 else None), model[-1]
            context = {"branch": branch, "variant": variant["index"]}
            with fit_warnings.capture(**context):
                Xt = preprocess.fit_transform(X_train, y_train) if preprocess else X_train
                Xv = preprocess.transform(X_val) if preprocess else X_val
            extra = {"classes": classes} if classes is not None else {}
            state = {
                "branch": branch, "variant": variant["index"], "description": description,
                "estimator": variant["estimator"], "params": variant["params"], "primary": None, "best_epoch": None,
                "epochs_completed": 0, "early_stopped": False, "stopped_epoch": None, "latest": None,
            }
            best_estimator, waited = None, 0
            for epoch in range(1, epochs + 1):
                if reporter.should_stop():
                    raise Cancelled()
                reporter.progress(
                    f"Epoch {epoch}/{epochs} - {label}",
                    progress=clock.fraction, finished=clock.finished, total=clock.total, **clock.eta_fields(),
                    elapsed_seconds=clock.elapsed(), epoch=epoch, total_epochs=epochs, best_score=best_score,
                    latest_score=state["latest"],
                )
                order = rng.permutation(len(y_train))
                started = time.perf_counter()
                try:
                    with fit_warnings.capture(**context, fold=None):
                        estimator.partial_fit(pipeline.take(Xt, order), y_train[order], **extra)
                        fit_time = time.perf_counter() - started
                        scores = pipeline.score(estimator, Xv, y_val, task)
                except Exception as e:
                    raise RunError(f"Training {description} failed in epoch {epoch}: {e}", "train") from e
                clock.add(time.perf_counter() - started, key=(branch, variant["index"]))
                primary = scores[metric]
                state["latest"], state["epochs_completed"] = primary, epoch
                if pipeline.better(task, metric, primary, state["primary"]):
                    state["primary"], state["best_epoch"], waited = primary, epoch, 0
                    best_estimator = copy.deepcopy(estimator)  # early stopping keeps the best epoch's model
                else:
                    waited += 1
                if pipeline.better(task, metric, state["primary"], best_score):
                    best_score = state["primary"]
                reporter.epoch_done(
                    branch=branch, variant=variant["index"], description=description, epoch=epoch,
                    total_epochs=epochs, metrics=scores, fit_time=round(fit_time, 4), primary_metric=metric,
                    primary=primary, best=state["primary"], finished=clock.finished, total=clock.total,
                    best_score=best_score, **clock.eta_fields(),
                )
                if waited >= patience and epoch < epochs:
                    state["early_stopped"], state["stopped_epoch"] = True, epoch
                    clock.skip(epochs - epoch, key=(branch, variant["index"]))
                    reporter.log(
                        "info",
                        f"{description}: no better {metric} for {patience} epochs; stopped early at epoch {epoch} "
                        f"(best {_fmt(state['primary'])} at epoch {state['best_epoch']})",
                        **context,
                    )
                    break
            reporter.record(
                early_stopped=state["early_stopped"], stopped_epoch=state["stopped_epoch"], latest_score=state["latest"]
            )
            steps_fitted = list(preprocess.steps) if preprocess else []
            state["model"] = Pipeline([*steps_fitted, ("model", best_estimator or estimator)])
            state["means"] = {metric: state["primary"]}
            results.append(state)
            if best is None or pipeline.better(task, metric, state["primary"], best["primary"]):
                best = state
    return {
        "best": best,
        "variants": [{k: v for k, v in r.items() if k != "model"} for r in results],
        "models_trained": len(results),
        "epochs_completed": sum(r["epochs_completed"] for r in results),
        "epochs_total": clock.total,
    }


def _facts(state):
    return {k: state[k] for k in ("best_epoch", "epochs_completed", "early_stopped", "stopped_epoch", "latest")}


def _fmt(value):
    return "n/a" if value is None else f"{value:.4f}"
