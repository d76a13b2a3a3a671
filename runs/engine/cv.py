"""The cross-validation runner: every branch x variant x fold is a real Pipeline fit, then the best variant by
the primary metric's mean over folds is refitted on all the data and exported."""

import time

from experiments.spec import branches, describe_variant, variants

from . import export, pipeline, scoring
from .common import FitWarnings, build_for, load_and_validate, step
from .errors import Cancelled, RunError
from .reporting import Clock


def run(spec, reporter, workdir, *, dataset_path=None, timings):
    task, metric = spec["task"], spec["metric"]
    data = load_and_validate(spec, reporter, timings, dataset_path)

    with step(reporter, "cross_validate", timings):
        table = cross_validate(spec, data, reporter)
        best = rank(table, task, metric)[0]
        if best["primary"] is None:
            raise RunError(f"No variant could be scored by {metric}; choose another metric.")

    with step(reporter, "refit_best", timings):
        if reporter.should_stop():
            raise Cancelled()
        reporter.progress(
            f"Refitting the best variant on all {data.n_rows} rows - {best['description']}",
            progress=1.0, finished=table["clock"].finished, total=table["clock"].total,
            eta_seconds=table["clock"].mean_seconds, elapsed_seconds=table["clock"].elapsed(),
        )
        model = build_for(data, best["steps"], best["spec_variant"], spec)
        started = time.perf_counter()
        with FitWarnings(reporter).capture(branch=best["branch"], variant=best["variant"]):
            model.fit(data.X, data.y)
        reporter.log("info", f"Refitted {best['description']} on all data in {time.perf_counter() - started:.2f} s")

    with step(reporter, "export", timings):
        bundle = export.write_bundle(workdir, model, export.metadata(spec, data, best, variants=table["variants"]))
        reporter.log("info", f"Exported the model bundle (SHA-256 {bundle['sha256'][:12]}…)")

    return {
        "best": best,
        "variants": table["variants"],
        "models_trained": table["clock"].finished + 1,
        "data": data,
        "bundle": bundle,
    }


def cross_validate(spec, data, reporter):
    task, metric = spec["task"], spec["metric"]
    chains, all_variants = branches(spec), variants(spec)
    folds = list(pipeline.splitter(spec["cv"], task).split(data.X, data.y))
    clock = Clock(len(chains) * len(all_variants) * len(folds))
    fit_warnings = FitWarnings(reporter)
    greater = scoring.greater_is_better(task, metric)
    # The live "best so far" follows the leaderboard's rule: the best finished variant's mean; only before
    # any variant has finished, the running mean of the one in progress.
    table, best_finished = [], None
    for branch, steps in chains:
        for variant in all_variants:
            description = describe_variant(variant)
            label = variant["label"] + (f" [{branch}]" if len(chains) > 1 else "")
            entry = {
                "branch": branch, "variant": variant["index"], "description": description, "steps": steps,
                "estimator": variant["estimator"], "params": variant["params"], "spec_variant": variant, "folds": [],
            }
            table.append(entry)
            template = build_for(data, steps, variant, spec)
            reporter.variant(variant["index"], len(all_variants), description, branch)
            for number, (train, test) in enumerate(folds, 1):
                if reporter.should_stop():
                    raise Cancelled()
                reporter.fold(number, len(folds), branch=branch, variant=variant["index"])
                reporter.progress(
                    f"Fitting fold {number}/{len(folds)} - {label}",
                    progress=clock.fraction, finished=clock.finished, total=clock.total,
                    eta_seconds=clock.eta(), elapsed_seconds=clock.elapsed(),
                )
                model = pipeline.fresh(template)
                context = {"fold": number, "branch": branch, "variant": variant["index"]}
                started = time.perf_counter()
                try:
                    with fit_warnings.capture(**context):
                        model.fit(pipeline.take(data.X, train), data.y[train])
                        fit_time = time.perf_counter() - started
                        scores = pipeline.score(model, pipeline.take(data.X, test), data.y[test], task)
                except Exception as e:
                    raise RunError(f"Fitting {description} on fold {number} failed: {e}", "cross_validate") from e
                clock.add(time.perf_counter() - started)
                entry["folds"].append(scores)
                running = scoring.mean(f[metric] for f in entry["folds"])
                # The variant's last fold finishes it: its mean counts as finished now, so a stop right after
                # this fold leaves the run's best score where the leaderboard puts it.
                best_score = best_finished
                if len(entry["folds"]) == len(folds) and scoring.better(running, best_score, greater):
                    best_score = running
                if best_score is None:
                    best_score = running
                reporter.fold_done(
                    branch=branch, variant=variant["index"], description=description, fold=number,
                    metrics=scores, fit_time=round(fit_time, 4), primary_metric=metric, primary=scores[metric],
                    running_mean=running, finished=clock.finished, total=clock.total, eta_seconds=clock.eta(),
                    best_score=best_score,
                )
            summarise(entry, task, metric)
            if scoring.better(entry["primary"], best_finished, greater):
                best_finished = entry["primary"]
            reporter.log(
                "info",
                f"{description}: mean {metric} {_fmt(entry['primary'])} over {len(folds)} folds",
                branch=branch, variant=variant["index"],
            )
    return {"variants": [_public(e) for e in table], "entries": table, "clock": clock}


def summarise(entry, task, metric):
    names = entry["folds"][0].keys() if entry["folds"] else []
    entry["means"] = {name: scoring.mean(f[name] for f in entry["folds"]) for name in names}
    entry["primary"] = entry["means"].get(metric)


def rank(table, task, metric):
    """Variants from best to worst, by the rule every page uses (runs.engine.scoring)."""
    return scoring.rank(table["entries"], scoring.greater_is_better(task, metric))


def _public(entry):
    return {
        "branch": entry["branch"], "variant": entry["variant"], "description": entry["description"],
        "estimator": entry["estimator"], "params": entry["params"], "means": entry.get("means", {}),
    }


def _fmt(value):
    return "n/a" if value is None else f"{value:.4f}"
