"""The parent's account of a cross-validation run's fits (engine/runners/cv.py): what landed, what is stored, and what
the stop rule decided (engine/runners/stop_rules.py).

Every fit that lands, fitted here, in a child, on a Dask worker, or reused from the run a resume continues, is
offered to the rule, which says when to store it (in a sequential run's order) and what it prunes. Storing is
one fold_done event per fit; each decision is one stop_decision event, a log line, and fewer fits on the clock.
"""

from .. import scoring
from ..common import FitWarnings

class Book:
    def __init__(self, spec, reporter, clock, table, n_variants, n_folds, rule, announce_on_store=False):
        self.task, self.metric, self.reporter, self.clock = spec["task"], spec["metric"], reporter, clock
        self.table, self.n_variants, self.n_folds, self.rule = table, n_variants, n_folds, rule
        self.greater = scoring.greater_is_better(self.task, self.metric)
        self.warnings = FitWarnings(reporter)
        # Fits in children are announced (variant, fold, warnings) when stored, since they land out of order.
        self.announce_on_store, self.announced = announce_on_store, set()
        self.known, self.reused, self.started = set(), set(), set()  # keys landed; reused; fitted by this run
        # The live "best so far" follows the leaderboard's rule: the best finished variant's mean; only before
        # any variant has finished, the running mean of the one in progress.
        self.best_finished = None

    # --- Landing -------------------------------------------------------------------------------------------

    def land(self, i, number, result, reused=False):
        """A fit of table row `i` on fold `number` landed: {"scores", "fit_time", "seconds", "diagnostics",
        "warnings"} (`reused`: taken from the run being resumed, not fitted)."""
        self.known.add((i, number))
        (self.reused if reused else self.started).add((i, number))
        value = result["scores"].get(self.metric)
        for action in self.rule.offer(i, number, value, (result, reused)):
            if action[0] == "store":
                self._store(action[1], action[2], *action[3])
            elif action[0] == "decision":
                self._decided(action[1])

    def todo(self, wave):
        """The fits of a wave this run still has to fit."""
        return [key for key in wave if key not in self.known and self.rule.wanted(*key)]

    def end_wave(self):
        for decision in self.rule.end_wave():
            self._decided(decision)

    def _store(self, i, number, result, reused):
        entry = self.table[i]
        if self.announce_on_store and not reused:
            if i not in self.announced:
                self.announced.add(i)
                self.reporter.variant(entry["variant"], self.n_variants, entry["description"], entry["branch"])
            self.reporter.fold(number, self.n_folds, branch=entry["branch"], variant=entry["variant"])
            self.warnings.report(result.get("warnings", []), fold=number, branch=entry["branch"],
                                 variant=entry["variant"])
        self.done(entry, number, result["scores"], result["fit_time"], None if reused else result["seconds"],
                  result.get("diagnostics"), result.get("whole"))

    def done(self, entry, number, scores, fit_time, seconds, diagnosed=None, whole=None):
        """`seconds` None: a reused fold, which this run did not fit and its clock does not count; `whole`: its
        whole cost as the run it comes from stored it (None from runs that stored only the fit time)."""
        key = (entry["branch"], entry["variant"])
        cost = seconds if seconds is not None else whole
        if seconds is not None:
            self.clock.add(seconds, key=key)
        elif (whole or fit_time) and self.clock.plan is not None:
            self.clock.plan.learn(key, whole or fit_time)  # a reused fold still says what this variant costs
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
            running_mean=running, finished=self.clock.finished, total=self.clock.total, **self.clock.eta_fields(),
            best_score=best_score, diagnostics=diagnosed or None, reused=seconds is None,
            seconds=None if cost is None else round(cost, 4),
        )
        if complete:
            summarise(entry, self.task, self.metric)
            if scoring.better(entry["primary"], self.best_finished, self.greater):
                self.best_finished = entry["primary"]
            self.reporter.log(
                "info", f"{entry['description']}: mean {self.metric} {fmt(entry['primary'])} over {self.n_folds} folds",
                branch=entry["branch"], variant=entry["variant"],
            )

    # --- Decisions -----------------------------------------------------------------------------------------

    def _decided(self, decision):
        rows = decision.get("stopped", [decision["row"]]) if decision["decision"] == "target_reached" else [decision["row"]]
        # The fits these rows will never store leave the clock: progress and ETA count only what will run.
        for row in rows:
            left = sum(1 for number in range(1, self.n_folds + 1)
                       if number not in self.table[row]["by_fold"] and (row, number) not in self.reused)
            self.clock.drop(left, key=(self.table[row]["branch"], self.table[row]["variant"]))
        entry = self.table[decision["row"]]
        message = explain(decision, entry, self.metric, self.greater)
        pruned = [self._pruned_row(row, self.rule.pruned[row], message) for row in rows]
        self.reporter.stop_decision(
            decision=decision["decision"], rule=decision["rule"], branch=entry["branch"], variant=entry["variant"],
            description=entry["description"], folds=decision["folds"], total_folds=self.n_folds, metric=self.metric,
            mean=decision["mean"], threshold=decision["threshold"], message=message, pruned=pruned,
            pruned_variants=len(self.rule.pruned), variants=len(self.table), finished=self.clock.finished,
            total=self.clock.total,
        )
        self.reporter.log("info", message, branch=entry["branch"], variant=entry["variant"])

    def _pruned_row(self, row, decision, message):
        entry = self.table[row]
        own = message if decision["decision"] == "pruned" and not decision.get("by_target") else (
            f"{entry['description']} stopped after fold {decision['folds']}/{self.n_folds}: {message}")
        return {"branch": entry["branch"], "variant": entry["variant"], "rule": decision["rule"],
                "folds": decision["folds"], "mean": decision["mean"], "threshold": decision["threshold"],
                "message": own}

    def summary(self):
        """What the stop rule saved, for the run's summary (None without a rule)."""
        if self.rule.kind is None:
            return None
        facts = self.rule.summary()
        facts["fits_saved"] = facts["fits_total"] - len(self.reused) - len(self.started)
        return facts


def explain(decision, entry, metric, greater):
    """A decision as the log and the step panel say it: "RF(max_depth=4) pruned after fold 2/5: mean accuracy
    0.7100 < median 0.7800"."""
    worse, reached = ("<", "≥") if greater else (">", "≤")
    head = f"{entry['description']}" + (f" [{entry['branch']}]" if entry["label"].endswith("]") else "")
    where = f"after fold {decision['folds']}/{decision['total_folds']}"
    if decision["decision"] == "target_reached":
        stopped = len(decision.get("stopped", []))
        return (f"{head} reached the target: mean {metric} {fmt(decision['mean'])} {reached} "
                f"{scoring_text(decision['threshold'])} over {decision['folds']} folds; the run ends"
                + (f", stopping {stopped} unfinished variant{'s' if stopped != 1 else ''}" if stopped else ""))
    if decision["rule"] == "median":
        return f"{head} pruned {where}: mean {metric} {fmt(decision['mean'])} {worse} median {fmt(decision['threshold'])}"
    cut = f"the cut-off for the best {decision['kept']} of {decision['of']}"
    if decision["mean"] == decision["threshold"]:  # a tie at the cut: the earlier variant in the spec stays
        return f"{head} pruned {where}: mean {metric} {fmt(decision['mean'])} ties {cut}; ties keep spec order"
    return f"{head} pruned {where}: mean {metric} {fmt(decision['mean'])} {worse} {fmt(decision['threshold'])}, {cut}"


def summarise(entry, task, metric):
    names = entry["folds"][0].keys() if entry["folds"] else []
    entry["means"] = {name: scoring.mean(f[name] for f in entry["folds"]) for name in names}
    entry["primary"] = entry["means"].get(metric)


def scoring_text(value):
    return f"{value:g}"


def fmt(value):
    return "n/a" if value is None else f"{value:.4f}"
