"""The experiment page's "Fits per run" adds up: its number is the product it names and the total_fits a run of
that experiment starts with, and the refit of a cross-validation is added after it, never hidden inside."""

import math
import re

import pytest
from django.utils.html import strip_tags

from experiments.models import Experiment
from runs.control import launch_run

IRIS = {"dataset": {"kind": "builtin", "name": "iris"}, "task": "classification", "metric": "accuracy"}
FIVE = {"estimator": "LogisticRegression", "params": {"C": [0.01, 0.1, 1.0, 10.0, 100.0], "max_iter": [500]}}
TWO_BRANCHES = [{"name": "standard", "preprocessing": ["standard_scaler"]},
                {"name": "minmax", "preprocessing": ["minmax_scaler"]}]


def fits_line(client, experiment):
    page = client.get(f"/experiments/{experiment.pk}/").content.decode()
    match = re.search(r"<dt>Fits per run</dt><dd>(.*?)</dd>", page, re.S)
    assert match, "no Fits per run on the experiment page"
    return " ".join(strip_tags(match.group(1)).split())


@pytest.mark.parametrize("spec, expected", [
    ({**IRIS, "models": [FIVE], "branches": TWO_BRANCHES, "cv": {"folds": 5}},
     "50 + 1 refit (2 branches × 5 variants × 5 folds, then the best variant refitted on all rows)"),
    ({**IRIS, "models": [FIVE], "cv": {"folds": 3}},
     "15 + 1 refit (1 branch × 5 variants × 3 folds, then the best variant refitted on all rows)"),
    # Epoch training keeps its best epoch: no refit to add.
    ({**IRIS, "runner": "training", "models": ["SGDClassifier"], "training": {"epochs": 1, "patience": 1}},
     "1 (1 branch × 1 variant × 1 epoch)"),
])
def test_it_says_fits_per_run_that_add_up(client, owner, spec, expected):
    experiment = Experiment.objects.create(owner=owner, name="sweep", spec=spec)
    client.force_login(owner)

    line = fits_line(client, experiment)

    assert line == expected
    headline, product = re.fullmatch(r"(\d+)(?: \+ 1 refit)? \((.*?)(?:, then .*)?\)", line).groups()
    assert int(headline) == math.prod(int(n) for n in re.findall(r"(\d+) \w+", product))
    assert launch_run(owner, experiment=experiment).total_fits == int(headline)
