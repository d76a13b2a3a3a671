"""engine.runners.eta: the ETA that knows models differ (issue 30)."""

import pytest

from engine.runners import eta


def _plan(**kwargs):
    # A fast and a slow variant of different estimators, 4 folds each, on one branch.
    fits = {("b", "fast"): ("Ridge", {}, 4), ("b", "slow"): ("HistGradientBoostingRegressor", {}, 4)}
    return eta.Plan(fits, refit=False, **kwargs)


def test_it_counts_each_variant_at_its_own_speed():
    plan = _plan()
    for _ in range(2):
        plan.observe(("b", "fast"), 1.0)
        plan.observe(("b", "slow"), 10.0)
    point, low, high = plan.remaining()
    assert point == 2 * 1.0 + 2 * 10.0
    assert low < point < high


def test_it_uses_an_earlier_runs_prior_for_an_unseen_estimator():
    plan = _plan(priors={"HistGradientBoostingRegressor": 10.0})
    plan.observe(("b", "fast"), 1.0)
    point, low, high = plan.remaining()
    assert point == 3 * 1.0 + 4 * 10.0
    assert high > point > low


def test_it_has_nothing_to_say_before_any_evidence():
    assert _plan().remaining() is None


def test_it_narrows_the_range_as_a_variants_fits_come_in():
    plan = _plan()
    plan.observe(("b", "fast"), 1.0)
    plan.observe(("b", "slow"), 10.0)
    one = plan.expected(("b", "slow"))
    plan.observe(("b", "slow"), 10.0)
    two = plan.expected(("b", "slow"))
    assert two[2] - two[1] < one[2] - one[1]


def test_it_scales_other_parameters_by_their_work():
    fits = {("b", "small"): ("RandomForestRegressor", {"n_estimators": 100}, 1),
            ("b", "big"): ("RandomForestRegressor", {"n_estimators": 300}, 1)}
    plan = eta.Plan(fits, refit=False)
    plan.observe(("b", "small"), 2.0)
    assert plan.expected(("b", "big"))[0] == 6.0


def test_it_adds_the_refit_and_divides_parallel_work():
    fits = {("b", "v"): ("Ridge", {}, 5)}
    plan = eta.Plan(fits, refit=True, refit_factor=1.25)
    plan.observe(("b", "v"), 2.0)
    serial = plan.remaining()[0]
    assert serial == 4 * 2.0 + 1.25 * 2.0
    assert plan.remaining(parallel=2)[0] < serial
    plan.refitted()
    assert plan.remaining()[0] == 4 * 2.0


def test_it_shows_a_narrow_range_as_one_value():
    assert eta.is_sure(40, 44)
    assert not eta.is_sure(10, 30)


def _mixed(**kwargs):
    # Fast fits first, as a user's grid lists them; the cost model says the slow one is 10x dearer.
    fits = {("b", 1): ("LogisticRegression", {}, 5), ("b", 2): ("HistGradientBoostingClassifier", {}, 5)}
    return eta.Plan(fits, refit=False, costs={("b", 1): 0.1, ("b", 2): 1.0}, **kwargs)


def test_it_takes_an_unseen_estimator_from_the_cost_model_scaled_by_the_fits_seen():
    plan = _mixed()
    for _ in range(5):
        plan.observe(("b", 1), 0.3)  # this machine runs 3x the cost model
    point, low, high = plan.remaining()
    # 5 slow fits at 3 x 1.0 s, not at the 0.3 s the fast fits took (the old mean-of-fits-so-far ETA: 1.5 s).
    assert point == 5 * 3.0
    assert low < point < high


def test_it_lets_a_slow_models_own_fit_drive_the_rest_once_one_is_seen():
    plan = _mixed()
    for _ in range(5):
        plan.observe(("b", 1), 0.3)
    plan.observe(("b", 2), 8.0)  # the cost model was 2.7x too low for this one
    assert plan.expected(("b", 2))[0] == 8.0
    assert plan.remaining()[0] == 4 * 8.0
    assert plan.expected(("b", 1))[0] == 0.3  # and the slow fit does not change the fast one's


def test_it_scales_an_unseen_estimator_from_a_seen_one_on_another_branch_before_the_cost_model():
    fits = {("a", 1): ("HistGradientBoostingClassifier", {}, 2), ("b", 1): ("HistGradientBoostingClassifier", {}, 2),
            ("b", 2): ("LogisticRegression", {}, 2)}
    plan = eta.Plan(fits, refit=False, costs={("a", 1): 1.0, ("b", 1): 1.0, ("b", 2): 0.1})
    plan.observe(("b", 2), 0.1)
    plan.observe(("a", 1), 6.0)
    assert plan.expected(("b", 1))[0] == 6.0  # the same estimator's own fits, not the cost model's 1.0
    assert plan.expected(("a", 1))[1] > plan.expected(("b", 1))[1]  # narrower where it was seen


def test_it_follows_the_cost_model_through_its_measured_sizes():
    from engine.runners import costs

    small, mid, large = costs.COSTS["HistGradientBoostingClassifier"]
    assert costs.fit_seconds("HistGradientBoostingClassifier", {}, 4000, 10) == pytest.approx(mid)
    assert costs.fit_seconds("HistGradientBoostingClassifier", {}, 16000, 10) == pytest.approx(large)
    assert costs.fit_seconds("HistGradientBoostingClassifier", {}, 100, 10) == pytest.approx(small)
    between = costs.fit_seconds("LogisticRegression", {}, 8000, 10)
    assert costs.COSTS["LogisticRegression"][1] <= between <= costs.COSTS["LogisticRegression"][2]
    beyond = [costs.fit_seconds("RandomForestClassifier", {}, rows, 10) for rows in (16000, 32000, 64000)]
    assert beyond[0] < beyond[1] < beyond[2]
    # Past the last size a flat last segment (early stopping) grows from its own last time, as the square root:
    # 40,000 rows of HistGradientBoosting measured 1.9x its 16,000-row CPU time, not 3.3x.
    assert costs.fit_seconds("HistGradientBoostingClassifier", {}, 64000, 10) == pytest.approx(2 * large)
    # Twice the trees, twice the work; twice the columns, twice what grows with the data.
    forest = costs.fit_seconds("RandomForestClassifier", {}, 4000, 10)
    assert costs.fit_seconds("RandomForestClassifier", {"n_estimators": 200}, 4000, 10) == pytest.approx(2 * forest)
    floor = costs.COSTS["RandomForestClassifier"][0]
    assert costs.fit_seconds("RandomForestClassifier", {}, 4000, 20) == pytest.approx(floor + 2 * (forest - floor))


def test_it_reports_each_folds_whole_cost_beside_its_fit_time(iris_spec, tmp_path):
    # The neighbours' fit only stores the rows; their cost is in the scoring. The fold's `seconds` (what the ETA
    # counts, and what runs.history reads back) must hold it; `fit_time` alone says almost nothing.
    import engine
    from engine.spec import validate_spec

    class Folds(engine.Reporter):
        def __init__(self):
            self.folds = []

        def fold_done(self, **facts):
            self.folds.append(facts)

    iris_spec["models"] = [{"estimator": "KNeighborsClassifier", "params": {}}]
    reporter = Folds()
    engine.execute(validate_spec(iris_spec), reporter, tmp_path)
    assert len(reporter.folds) == 3
    for facts in reporter.folds:
        assert facts["seconds"] > facts["fit_time"] > 0
    assert sum(f["seconds"] for f in reporter.folds) > 2 * sum(f["fit_time"] for f in reporter.folds)
