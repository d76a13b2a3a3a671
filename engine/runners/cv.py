"""The cross-validation runner: every branch x variant x fold is a real Pipeline fit, then the best variant by
the primary metric's mean over folds is refitted on all the data and exported."""

import time

from ..spec import branches, describe_variant, variants

from .. import diagnostics, export, pipeline, scoring
from . import dask_fits, eta, parallel, stop_rules
from .book import Book, summarise
from ..common import FitWarnings, build_for, library_versions, load_and_validate, step
from ..errors import Cancelled, RunError
from ..reporting import Clock


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
        if not best["complete"]:  # cannot happen: every rule lets at least one variant finish every fold
            raise RunError("No variant finished every fold, so none can be refitted.")

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
        "stop": table["stop"],
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
    """Every (branch, variant, fold) fit the stop rule lets run (engine/runners/stop_rules.py; without one, all), in this
    process (n_jobs 1), spread over children, or over the Dask cluster whose scheduler is at `scheduler`
    (engine/runners/dask_fits.py); the table and the events are the same every way: the folds are split once, here,
    and the rule sees each result in spec order. `reused`: the {(branch, variant, fold): {"metrics",
    "fit_time", "seconds"}} of a resumed run, offered first (they feed the rule) and not fitted.
    `priors`: {estimator: seconds per fit} from earlier runs on the same data, for the ETA (engine.runners.eta)."""
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
    rule = stop_rules.make(spec.get("stop_rule"), len(table), len(folds), scoring.greater_is_better(task, metric))
    # The clock counts the fits this run does: its progress and its ETA are about the work left, each fit left
    # at the expected time of its own model (engine.runners.eta).
    clock = Clock(len(table) * len(folds) - len(reused), eta.for_cv(table, len(folds), reused, priors,
                                                                       (data.n_rows, data.n_features)))
    to_fit = len(table) * len(folds) - len(reused)
    jobs = parallel.effective_jobs(n_jobs, to_fit)
    spread = bool(to_fit) and ((scheduler and n_jobs != 1 and to_fit > 1) or jobs > 1)
    book = Book(spec, reporter, clock, table, len(all_variants), len(folds), rule, announce_on_store=spread)
    if rule.kind:
        reporter.log("info", f"Stop rule: {stop_rules.describe(spec['stop_rule'])}")
    if reused:
        _reuse(table, folds, book, reused)
    if not to_fit:
        pass  # every fold was reused: straight on to the refit
    elif scheduler and n_jobs != 1 and to_fit > 1:
        # n_jobs 1 stays in the work horse, as asked; otherwise the cluster's threads decide, at most n_jobs.
        _parallel(spec, data, table, folds, book, n_jobs, scheduler)
    elif jobs == 1:
        _sequential(spec, data, table, folds, book)
    else:
        _parallel(spec, data, table, folds, book, jobs)
    for i, entry in enumerate(table):
        if "means" not in entry:  # pruned, or stopped by the target: its partial mean, ranked after the complete
            summarise(entry, task, metric)
        entry["complete"] = len(entry["folds"]) == len(folds)
        entry["pruned"] = i in rule.pruned
        del entry["by_fold"], entry["label"]
    return {"variants": [_public(e) for e in table], "entries": table, "clock": clock, "stop": book.summary()}


def _reuse(table, folds, book, reused):
    book.reporter.log("info", f"Reusing {len(reused)} of {len(table) * len(folds)} fits from the run this one "
                              f"resumes; fitting the other {len(table) * len(folds) - len(reused)}")
    for i, entry in enumerate(table):
        for number in range(1, len(folds) + 1):
            fold = reused.get((entry["branch"], entry["variant"], number))
            if fold is not None:
                book.land(i, number, {"scores": fold["metrics"], "fit_time": fold["fit_time"], "seconds": None,
                                      "whole": fold.get("seconds"), "diagnostics": fold.get("diagnostics")},
                          reused=True)


def _sequential(spec, data, table, folds, book):
    """Today's loop, in the work horse: no process start-up or data transfer, which small runs would feel."""
    templates = {}
    for wave in book.rule.waves():
        for i, number in wave:
            if (i, number) not in book.todo([(i, number)]):
                continue  # reused, or its variant was pruned
            entry = table[i]
            if i not in templates:
                templates[i] = build_for(data, entry["steps"], entry["spec_variant"], spec)
                book.reporter.variant(entry["variant"], book.n_variants, entry["description"], entry["branch"])
            train, test = folds[number - 1]
            if book.reporter.should_stop():
                raise Cancelled()
            book.reporter.fold(number, len(folds), branch=entry["branch"], variant=entry["variant"])
            book.reporter.progress(
                f"Fitting fold {number}/{len(folds)} - {entry['label']}",
                progress=book.clock.fraction, finished=book.clock.finished, total=book.clock.total,
                elapsed_seconds=book.clock.elapsed(), **book.clock.eta_fields(),
            )
            model = pipeline.fresh(templates[i])
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
            book.land(i, number, {"scores": scores, "fit_time": fit_time, "seconds": seconds, "diagnostics": diagnosed})
            if book.rule.ended:
                return
        book.end_wave()


def _parallel(spec, data, table, folds, book, jobs, scheduler=""):
    """The fits spread, wave by wave: one wave for most rules, one per rung for successive halving, whose
    next rung depends on the whole last one."""
    templates = {}
    for wave in book.rule.waves():
        keys = book.todo(wave)
        if keys:
            for i in {i for i, _ in keys} - set(templates):
                templates[i] = build_for(data, table[i]["steps"], table[i]["spec_variant"], spec)
            _fit_wave(spec, data, table, folds, book, jobs, scheduler, keys, templates)
        if book.rule.ended:
            return
        book.end_wave()


def _fit_wave(spec, data, table, folds, book, jobs, scheduler, keys, templates):
    tasks = [((i, number), templates[i], data.X, data.y, *folds[number - 1], spec["task"], _look(data, number))
             for i, number in keys]
    where = f"the Dask cluster at {scheduler}" if scheduler else f"{jobs} processes"
    book.reporter.log("info", f"Fitting {len(tasks)} models on {where}" + ("" if scheduler else " at once"))
    book.clock.parallel = 1 if scheduler else jobs  # the time left is spread over the processes
    book.reporter.progress(
        f"Fitting {len(tasks)} models on {where}", progress=book.clock.fraction, finished=book.clock.finished,
        total=book.clock.total, elapsed_seconds=book.clock.elapsed(), **book.clock.eta_fields(),
    )

    def skip(key):  # a fit of a variant pruned meanwhile never starts
        return not book.rule.wanted(*key)

    if scheduler:
        fits = dask_fits.run_tasks(tasks, scheduler, book.reporter.should_stop, jobs, skip=skip)
    else:
        fits = parallel.run_tasks(tasks, jobs, book.reporter.should_stop, skip=skip)
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
                book.started.add(key)
                book.reporter.in_flight(_in_flight(table, running))
                continue
            book.land(i, number, payload)  # stored now, held for an earlier decision, or discarded if pruned
            book.reporter.in_flight(_in_flight(table, running))
            book.reporter.progress(
                f"Fitted {book.clock.finished} of {book.clock.total} models on {where} - last: fold "
                f"{number}/{len(folds)} of {entry['label']}",
                progress=book.clock.fraction, finished=book.clock.finished, total=book.clock.total,
                elapsed_seconds=book.clock.elapsed(), **book.clock.eta_fields(),
            )
            if book.rule.ended:
                break  # the target is reached: closing the fits ends the children (or cancels the futures)
    except parallel.FitFailed as e:
        i, number = e.key
        raise RunError(f"Fitting {table[i]['description']} on fold {number} failed: {e}", "cross_validate") from e
    except parallel.ChildDied as e:
        book.reporter.log("error", f"A fit process died: {e}")
        fits = "; ".join(f"{table[i]['description']} fold {number}" for i, number in sorted(e.keys))
        raise RunError(f"A fit process died while fitting {fits or 'a model'} (one of these was on it). It may "
                       "have run out of memory or crashed in native code: lower n_jobs or the size of the data, "
                       "then run again.", "cross_validate") from e
    finally:
        if hasattr(fits, "close"):
            fits.close()
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


def rank(table, task, metric):
    """Variants from best to worst, by the rule every page uses (engine.scoring)."""
    return scoring.rank(table["entries"], scoring.greater_is_better(task, metric), complete=lambda e: e["complete"])


def _described(entry):
    return entry["description"] + (f" [{entry['branch']}]" if entry["label"].endswith("]") else "")


def _public(entry):
    return {
        "branch": entry["branch"], "variant": entry["variant"], "description": entry["description"],
        "estimator": entry["estimator"], "params": entry["params"], "means": entry.get("means", {}),
        "complete": entry["complete"], "pruned": entry["pruned"],
    }

