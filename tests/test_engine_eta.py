"""engine.eta: the ETA that knows models differ (issue 30)."""

from engine import eta


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
