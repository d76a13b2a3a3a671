"""engine/runners/stop_rules.py: each rule's decisions, and that they do not depend on the order fits land in."""

import itertools
import random

import pytest

from engine.runners import stop_rules


def feed(rule, scores, order=None):
    """Runs `rule` over `scores` (row -> [value per fold]) as a parent would: wave by wave, the fits of each
    wave landing in `order` (a function shuffling the wave), only fits still wanted starting. Returns the
    stored {(row, fold)}, the decisions, and the fits that were started."""
    stored, decisions, started = set(), [], []
    for wave in rule.waves():
        todo = [k for k in wave if k not in stored]
        if order:
            todo = order(todo)
        for row, fold in todo:
            if not rule.wanted(row, fold):
                continue
            started.append((row, fold))
            for action in rule.offer(row, fold, scores[row][fold - 1], None):
                if action[0] == "store":
                    stored.add(action[1:3])
                elif action[0] == "decision":
                    decisions.append(action[1])
            if rule.ended:
                break
        decisions += rule.end_wave()
        if rule.ended:
            break
    return stored, decisions, started


SCORES = {0: [0.9, 0.9, 0.9, 0.9, 0.9], 1: [0.8, 0.8, 0.8, 0.8, 0.8], 2: [0.5, 0.4, 0.5, 0.4, 0.5],
          3: [0.95, 0.93, 0.94, 0.96, 0.95], 4: [0.6, 0.9, 0.9, 0.9, 0.9]}


def test_it_prunes_below_the_median_of_the_rows_before():
    rule = stop_rules.make({"kind": "median", "after_folds": 2}, 5, 5, greater=True)
    stored, decisions, started = feed(rule, SCORES)
    pruned = {d["row"]: d for d in decisions}
    # Row 1 (0.8) is below row 0 (0.9) at fold 2; row 2 is below the median of rows 0-1; row 3 is the best;
    # row 4's mean at fold 2 is 0.75, below the median (0.85) of rows 0-3 at fold 2 (pruned ones count too).
    assert set(pruned) == {1, 2, 4}
    assert pruned[1]["folds"] == 2 and pruned[1]["threshold"] == 0.9 and pruned[1]["mean"] == 0.8
    assert pruned[2]["threshold"] == pytest.approx(0.85)
    assert pruned[4]["mean"] == pytest.approx(0.75) and pruned[4]["threshold"] == pytest.approx(0.85)
    assert all(d["decision"] == "pruned" and d["rule"] == "median" for d in decisions)
    assert {(r, f) for r, f in stored if r in (1, 2, 4)} == {(r, f) for r in (1, 2, 4) for f in (1, 2)}
    assert all((r, f) in stored for r in (0, 3) for f in range(1, 6))
    assert len(started) == 25 - 9  # folds 3-5 of three rows never started


def test_it_never_prunes_before_after_folds_nor_at_the_last_fold():
    rule = stop_rules.make({"kind": "median", "after_folds": 5}, 5, 5, greater=True)
    _, decisions, started = feed(rule, SCORES)
    assert decisions == [] and len(started) == 25


def test_it_follows_the_metric_direction():
    errors = {0: [1.0, 1.0, 1.0], 1: [2.0, 2.0, 2.0], 2: [0.5, 0.5, 0.5]}  # an error: lower is better
    rule = stop_rules.make({"kind": "median", "after_folds": 1}, 3, 3, greater=False)
    _, decisions, _ = feed(rule, errors)
    assert [d["row"] for d in decisions] == [1]


def test_it_decides_the_same_whatever_order_the_fits_land_in():
    baseline = feed(stop_rules.make({"kind": "median", "after_folds": 2}, 5, 5, True), SCORES)
    for seed in range(30):
        shuffle = random.Random(seed)
        rule = stop_rules.make({"kind": "median", "after_folds": 2}, 5, 5, True)
        stored, decisions, _ = feed(rule, SCORES, order=lambda todo: shuffle.sample(todo, len(todo)))
        assert stored == baseline[0]
        assert sorted(d["row"] for d in decisions) == sorted(d["row"] for d in baseline[1])


def test_it_holds_a_later_fold_until_the_earlier_decision_is_due():
    rule = stop_rules.make({"kind": "median", "after_folds": 2}, 2, 5, True)
    assert rule.offer(1, 1, 0.1, "a") == []  # row 0 has no fold 1 yet: a sequential run would not be here
    assert rule.offer(1, 2, 0.1, "b") == []
    actions = rule.offer(0, 1, 0.9, "c")
    assert [a[:3] for a in actions] == [("store", 0, 1), ("store", 1, 1)]
    actions = rule.offer(0, 2, 0.9, "d")
    assert [a[0] for a in actions] == ["store", "store", "decision"]
    assert actions[2][1]["row"] == 1 and not rule.wanted(1, 3)
    assert rule.offer(1, 3, 0.1, "e") == [("discard", 1, 3, "e")]


def test_it_halves_rung_by_rung():
    assert stop_rules.rungs(5, 3) == [1, 3, 5]
    assert stop_rules.rungs(5, 2) == [1, 2, 4, 5]
    assert stop_rules.rungs(2, 3) == [1, 2]
    scores = {row: [1 - row / 30] * 5 for row in range(30)}  # row 0 best, row 29 worst
    rule = stop_rules.make({"kind": "successive_halving", "factor": 3}, 30, 5, True)
    stored, decisions, started = feed(rule, scores)
    # 30 rows get fold 1; the best 10 get folds 2-3; the best 4 get folds 4-5.
    assert len(started) == 30 + 10 * 2 + 4 * 2
    assert sorted(d["row"] for d in decisions) == list(range(4, 30))
    assert {d["folds"] for d in decisions if d["row"] >= 10} == {1}
    assert {d["folds"] for d in decisions if 4 <= d["row"] < 10} == {3}
    assert all((row, f) in stored for row in range(4) for f in range(1, 6))
    cut = next(d for d in decisions if d["row"] == 10)
    assert cut["threshold"] == scores[9][0] and cut["kept"] == 10 and cut["of"] == 30


def test_it_halves_by_the_mean_of_the_rung_folds_only():
    # Row 1 is worse at fold 1 but row 0 collapses later; rung 0 judges fold 1 alone.
    scores = {0: [0.9, 0.1, 0.1], 1: [0.8, 0.9, 0.9]}
    rule = stop_rules.make({"kind": "successive_halving", "factor": 2}, 2, 3, True)
    _, decisions, _ = feed(rule, scores)
    assert [(d["row"], d["folds"]) for d in decisions] == [(1, 1)]


def test_it_ends_the_run_at_the_target():
    rule = stop_rules.make({"kind": "target", "value": 0.92}, 5, 5, True)
    stored, decisions, started = feed(rule, SCORES)
    assert decisions[-1]["decision"] == "target_reached" and decisions[-1]["row"] == 3
    assert decisions[-1]["stopped"] == [4]
    assert len(started) == 20 and not rule.wanted(4, 1)
    assert rule.summary()["target_reached"] and rule.summary()["pruned_variants"] == 1


def test_it_reaches_the_target_on_the_same_row_in_any_order():
    for order in itertools.permutations(range(5)):
        rule = stop_rules.make({"kind": "target", "value": 0.85}, 5, 5, True)
        stored, decisions, _ = feed(rule, SCORES, order=lambda todo: sorted(todo, key=lambda k: order.index(k[0])))
        assert decisions[-1]["row"] == 0
        assert stored == {(0, f) for f in range(1, 6)}


def test_it_prunes_nothing_without_a_rule():
    rule = stop_rules.make(None, 5, 5, True)
    stored, decisions, started = feed(rule, SCORES)
    assert decisions == [] and len(stored) == 25 and rule.summary()["pruned_variants"] == 0
