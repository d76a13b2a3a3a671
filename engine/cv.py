"""The cross-validation runner: every branch x variant x fold is a real Pipeline fit, then the best variant by
the primary metric's mean over folds is refitted on all the data and exported."""

import time

from .spec import branches, describe_variant, variants

from . import dask_fits, diagnostics, eta, export, parallel, pipeline, scoring
from .common import FitWarnings, build_for, library_versions, load_and_validate, step
from .errors import Cancelled, RunError
from .reporting import Clock


def run(spec, reporter, workdir, *, dataset_path=None, timings, n_jobs=1, scheduler="", resume=None, priors=None):
    task, metric = spec["task"], spec["metric"]
    data = load_and_validate(spec, reporter, timings, dataset_path)
    if resume:
        check_resumable(resume, data)

    with step(reporter, "cross_validate", timings):
        table = cross_validate(spec, data, reporter, n_jobs, scheduler, reused=resume and resume["folds"],
                               priors=priors)
        best = rank(table, task, metric)[0]
        if best["primary"] is None:
            raise RunError(f"No variant could be scored by {metric}; choose another metric.")

    with step(reporter, "refit_best", timings):
        if reporter.should_stop():
            raise Cancelled()
        clock = table["clock"]
        clock.plan.refitting((best["branch"], best["variant"]))
        clock.parallel = 1  # the refit is one fit, in the work horse
        reporter.progress(
            f"Refitting the best variant on all {data.n_rows} rows - {best['description']}",
            progress=1.0, finished=clock.finished, total=clock.total, elapsed_seconds=clock.elapsed(),
            **clock.eta_fields(),
        )
        model = build_for(data, best["steps"], best["spec_variant"], spec)
        started = time.perf_counter()
        with FitWarnings(reporter).capture(branch=best["branch"], variant=best["variant"]):
            model.fit(data.X, data.y)
        clock.plan.refitted()
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


def check_resumable(resume, data):
    """A resume reuses folds only where they would come out the same: the same data and scikit-learn."""
    if resume.get("data_sha256") and data.sha256 != resume["data_sha256"]:
        raise _not_resumable("the data is not the data of the run being resumed (its SHA-256 changed)")
    then = (resume.get("library_versions") or {}).get("scikit-learn")
    now = library_versions()["scikit-learn"]
    if then and then != now:
        raise _not_resumable(f"the run being resumed fitted with scikit-learn {then} and this worker has {now}")


def _not_resumable(why):
    error = RunError(f"{why}, so its folds cannot be reused", "load_data")
    error.hint = "Start a fresh run instead: Re-run fits every fold again."
    return error


def cross_validate(spec, data, reporter, n_jobs=1, scheduler="", reused=None, priors=None):
    """Every (branch, variant, fold) fit, in this process (n_jobs 1), spread over children, or over the Dask
    cluster whose scheduler is at `scheduler` (engine/dask_fits.py); the table and the events are the same
    every way: the folds are split once, here, and each result is stored in spec order. `reused`: the
    {(branch, variant, fold): {"metrics", "fit_time"}} of a resumed run, reported first and not fitted.
    `priors`: {estimator: seconds per fit} from earlier runs on the same data, for the ETA (engine.eta)."""
    task, metric = spec["task"], spec["metric"]
    chains, all_variants = branches(spec), variants(spec)
    folds = list(pipeline.splitter(spec["cv"], task).split(data.X, data.y))
    reused = {key: fold for key, fold in (reused or {}).items() if 1 <= key[2] <= len(folds)}
    table = []
    for branch, steps in chains:
        for variant in all_variants:
            table.append({
                "branch": branch, "variant": variant["index"], "description": describe_variant(variant),
                "label": variant["label"] + (f" [{branch}]" if len(chains) > 1 else ""), "steps": steps,
                "estimator": variant["estimator"], "params": variant["params"], "spec_variant": variant,
                "folds": [], "by_fold": {},
            })
    # The clock counts the fits this run does: its progress and its ETA are about the work left, each fit left
    # at the expected time of its own model (engine.eta).
    clock = Clock(len(table) * len(folds) - len(reused), eta.for_cv(table, len(folds), reused, priors,
                                                                       (data.n_rows, data.n_features)))
    book = Book(spec, reporter, clock, len(all_variants), len(folds))
    if reused:
        _reuse(table, folds, book, reused)
    to_fit = len(table) * len(folds) - len(reused)
    jobs = parallel.effective_jobs(n_jobs, to_fit)
    if not to_fit:
        pass  # every fold was reused: straight on to the refit
    elif scheduler and n_jobs != 1 and to_fit > 1:
        # n_jobs 1 stays in the work horse, as asked; otherwise the cluster's threads decide, at most n_jobs.
        _parallel(spec, data, table, folds, book, n_jobs, scheduler)
    elif jobs == 1:
        _sequential(spec, data, table, folds, book)
    else:
        _parallel(spec, data, table, folds, book, jobs)
    for entry in table:
        del entry["by_fold"], entry["label"]
    return {"variants": [_public(e) for e in table], "entries": table, "clock": clock}


def _reuse(table, folds, book, reused):
    book.reporter.log("info", f"Reusing {len(reused)} of {len(table) * len(folds)} fits from the run this one "
                              f"resumes; fitting the other {len(table) * len(folds) - len(reused)}")
    for entry in table:
        for number in range(1, len(folds) + 1):
            fold = reused.get((entry["branch"], entry["variant"], number))
            if fold is not None:
                book.done(entry, number, fold["metrics"], fold["fit_time"], None, fold.get("diagnostics"))


def _sequential(spec, data, table, folds, book):
    """Today's loop, in the work horse: no process start-up or data transfer, which small runs would feel."""
    for entry in table:
        if len(entry["by_fold"]) == len(folds):
            continue  # every fold reused
        template = build_for(data, entry["steps"], entry["spec_variant"], spec)
        book.reporter.variant(entry["variant"], book.n_variants, entry["description"], entry["branch"])
        for number, (train, test) in enumerate(folds, 1):
            if number in entry["by_fold"]:
                continue  # reused
            if book.reporter.should_stop():
                raise Cancelled()
            book.reporter.fold(number, len(folds), branch=entry["branch"], variant=entry["variant"])
            book.reporter.progress(
                f"Fitting fold {number}/{len(folds)} - {entry['label']}",
                progress=book.clock.fraction, finished=book.clock.finished, total=book.clock.total,
                elapsed_seconds=book.clock.elapsed(), **book.clock.eta_fields(),
            )
            model = pipeline.fresh(template)
            context = {"fold": number, "branch": entry["branch"], "variant": entry["variant"]}
            started = time.perf_counter()
            try:
                with book.warnings.capture(**context):
                    model.fit(pipeline.take(data.X, train), data.y[train])
                    fit_time = time.perf_counter() - started
                    X_test = pipeline.take(data.X, test)
                    scores = pipeline.score(model, X_test, data.y[test], spec["task"])
                    diagnosed = diagnostics.fold(model, X_test, data.y[test], spec["task"], **_look(data, number))
                    seconds = time.perf_counter() - started
            except Exception as e:
                raise RunError(f"Fitting {entry['description']} on fold {number} failed: {e}", "cross_validate") from e
            book.done(entry, number, scores, fit_time, seconds, diagnosed)


def _parallel(spec, data, table, folds, book, jobs, scheduler=""):
    templates = [build_for(data, e["steps"], e["spec_variant"], spec) for e in table]
    tasks = [((i, number), templates[i], data.X, data.y, train, test, spec["task"], _look(data, number))
             for i in range(len(table)) for number, (train, test) in enumerate(folds, 1)
             if number not in table[i]["by_fold"]]  # not the reused folds
    where = f"the Dask cluster at {scheduler}" if scheduler else f"{jobs} processes"
    book.reporter.log("info", f"Fitting {len(tasks)} models on {where}" + ("" if scheduler else " at once"))
    book.clock.parallel = 1 if scheduler else jobs  # the time left is spread over the processes
    book.reporter.progress(
        f"Fitting {len(tasks)} models on {where}", progress=0.0, finished=0, total=book.clock.total,
        elapsed_seconds=book.clock.elapsed(), **book.clock.eta_fields(),
    )
    if scheduler:
        fits = dask_fits.run_tasks(tasks, scheduler, book.reporter.should_stop, jobs)
    else:
        fits = parallel.run_tasks(tasks, jobs, book.reporter.should_stop)
    announced = set()
    try:
        for kind, key, payload, running in fits:
            if kind == "log":  # from the Dask backend: a worker was lost, and Dask runs its fits again
                book.reporter.log(payload["level"], payload["message"])
                continue
            i, number = key
            entry = table[i]
            # On a cluster, how many run at once is what is seen running.
            book.clock.parallel = max(book.clock.parallel, len(running))
            if kind == "started":
                book.reporter.in_flight(_in_flight(table, running))
                continue
            if i not in announced:
                announced.add(i)
                book.reporter.variant(entry["variant"], book.n_variants, entry["description"], entry["branch"])
            book.reporter.fold(number, len(folds), branch=entry["branch"], variant=entry["variant"])
            book.warnings.report(payload["warnings"], fold=number, branch=entry["branch"], variant=entry["variant"])
            book.done(entry, number, payload["scores"], payload["fit_time"], payload["seconds"],
                      payload.get("diagnostics"))
            book.reporter.in_flight(_in_flight(table, running))
            book.reporter.progress(
                f"Fitted {book.clock.finished} of {book.clock.total} models on {where} - last: fold "
                f"{number}/{len(folds)} of {entry['label']}",
                progress=book.clock.fraction, finished=book.clock.finished, total=book.clock.total,
                elapsed_seconds=book.clock.elapsed(), **book.clock.eta_fields(),
            )
    except parallel.FitFailed as e:
        i, number = e.key
        raise RunError(f"Fitting {table[i]['description']} on fold {number} failed: {e}", "cross_validate") from e
    except parallel.ChildDied as e:
        book.reporter.log("error", f"A fit process died: {e}")
        fits = "; ".join(f"{table[i]['description']} fold {number}" for i, number in sorted(e.keys))
        raise RunError(f"A fit process died while fitting {fits or 'a model'} (one of these was on it). It may "
                       "have run out of memory or crashed in native code: lower n_jobs or the size of the data, "
                       "then run again.", "cross_validate") from e
    book.reporter.in_flight([])


def _look(data, number):
    """What engine.diagnostics needs beyond the fold: its sample seed (the fold number, so the same points
    are drawn every way a run is fitted) and the feature names."""
    return {"seed": number, "feature_names": tuple(data.feature_names)}


def _in_flight(table, running):
    """The fits running now, in spec order, as the reporter takes them: plain data."""
    # The description, not the model's label: every variant of one model shares its label.
    return [{"branch": table[i]["branch"], "variant": table[i]["variant"], "label": _described(table[i]),
             "fold": number, "worker": worker} for (i, number), worker in sorted(running.items())]


class Book:
    """The parent's account of finished fits: each fold's scores stored in fold order whatever order they
    finished in, the variant summarised once its last fold is in, and one fold_done event per fit."""

    def __init__(self, spec, reporter, clock, n_variants, n_folds):
        self.task, self.metric, self.reporter, self.clock = spec["task"], spec["metric"], reporter, clock
        self.n_variants, self.n_folds = n_variants, n_folds
        self.greater = scoring.greater_is_better(self.task, self.metric)
        self.warnings = FitWarnings(reporter)
        # The live "best so far" follows the leaderboard's rule: the best finished variant's mean; only before
        # any variant has finished, the running mean of the one in progress.
        self.best_finished = None

    def done(self, entry, number, scores, fit_time, seconds, diagnosed=None):
        """`seconds` None: a reused fold, which this run did not fit and its clock does not count."""
        key = (entry["branch"], entry["variant"])
        if seconds is not None:
            self.clock.add(seconds, key=key)
        elif fit_time:
            self.clock.plan.learn(key, fit_time)  # a reused fold still says what this variant costs
        entry["by_fold"][number] = scores
        entry["folds"] = [entry["by_fold"][n] for n in sorted(entry["by_fold"])]
        running = scoring.mean(f[self.metric] for f in entry["folds"])
        complete = len(entry["folds"]) == self.n_folds
        # The variant's last fold finishes it: its mean counts as finished now, so a stop right after this
        # fold leaves the run's best score where the leaderboard puts it.
        best_score = self.best_finished
        if complete and scoring.better(running, best_score, self.greater):
            best_score = running
        if best_score is None:
            best_score = running
        self.reporter.fold_done(
            branch=entry["branch"], variant=entry["variant"], description=entry["description"], fold=number,
            metrics=scores, fit_time=round(fit_time, 4), primary_metric=self.metric, primary=scores[self.metric],
            running_mean=running, finished=self.clock.finished, total=self.clock.total, best_score=best_score,
            **self.clock.eta_fields(), diagnostics=diagnosed or None, reused=seconds is None,
        )
        if complete:
            summarise(entry, self.task, self.metric)
            if scoring.better(entry["primary"], self.best_finished, self.greater):
                self.best_finished = entry["primary"]
            self.reporter.log(
                "info", f"{entry['description']}: mean {self.metric} {_fmt(entry['primary'])} over {self.n_folds} folds",
                branch=entry["branch"], variant=entry["variant"],
            )


def summarise(entry, task, metric):
    names = entry["folds"][0].keys() if entry["folds"] else []
    entry["means"] = {name: scoring.mean(f[name] for f in entry["folds"]) for name in names}
    entry["primary"] = entry["means"].get(metric)


def rank(table, task, metric):
    """Variants from best to worst, by the rule every page uses (engine.scoring)."""
    return scoring.rank(table["entries"], scoring.greater_is_better(task, metric))


def _described(entry):
    return entry["description"] + (f" [{entry['branch']}]" if entry["label"].endswith("]") else "")


def _public(entry):
    return {
        "branch": entry["branch"], "variant": entry["variant"], "description": entry["description"],
        "estimator": entry["estimator"], "params": entry["params"], "means": entry.get("means", {}),
    }


def _fmt(value):
    return "n/a" if value is None else f"{value:.4f}"
