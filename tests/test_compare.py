"""/compare/: two to four runs side by side; specs with differences marked (or only those), best rows, metrics,
the leaderboards aligned by variant, one chart."""

import pytest
from django.urls import reverse

from experiments.models import Experiment
from results import compare
from runs.control import launch_run
from runs.models import Run
from tests.test_results_page import completed_run, scores

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture
def two_runs(owner, media, iris_spec):
    first = completed_run(owner, media, iris_spec, name="First")
    spec = {**iris_spec, "cv": {**iris_spec["cv"], "folds": 5}}
    second = launch_run(owner, spec=spec, name="Second")
    second.mark_running("w")
    scores(second, 1, "C", [0.80, 0.82, 0.84, 0.86, 0.88])
    return first, second


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def compare_url(*runs):
    return reverse("results:compare") + "?runs=" + ",".join(str(r.pk) for r in runs)


def test_it_parses_two_to_four_run_numbers():
    assert compare.parse_ids("3, 1,2") == [3, 1, 2]
    assert compare.parse_ids("3,3,4") == [3, 4]
    for bad in ("", "1", "1,1", "1,2,3,4,5", "1,x", "1,-2", "1,99999999999999999999"):
        with pytest.raises(compare.BadSelection):
            compare.parse_ids(bad)


def test_it_marks_the_spec_differences():
    a = Run(spec={"task": "classification", "cv": {"folds": 3}, "models": [{"estimator": "A", "params": {"C": [1]}}]})
    b = Run(spec={"task": "classification", "cv": {"folds": 5}, "models": [{"estimator": "A", "params": {"C": [1]}}]})
    rows = {r["path"]: r for r in compare.spec_table([a, b])}
    assert rows["cv.folds"]["differs"] and rows["cv.folds"]["values"] == ["3", "5"]
    assert not rows["task"]["differs"] and not rows["models.0.params.C"]["differs"]


def test_it_compares_runs_side_by_side(owner_client, two_runs):
    first, second = two_runs
    html = owner_client.get(compare_url(first, second)).content.decode()
    assert f'<a href="/runs/{first.pk}/results/">First</a>' in html and "Second" in html
    assert '<tr class="differs"><th scope="row">cv.folds' in html and "1 of 17 settings differs" in html
    # Each run's best row and its metrics as mean ± std.
    assert '<span class="variant-desc">B</span>' in html and '<span class="variant-desc">C</span>' in html
    assert "0.9700 ± 0.0082" in html and "0.8400 ± 0.0283" in html
    # Both best variants' folds on one chart, five folds on the shared axis.
    assert html.count('<g class="series series-') == 2
    assert f"#{second.pk} C, fold 5: 0.8800" in html and f"#{first.pk} B, fold 3: 0.9800" in html


def test_it_updates_running_runs_live(owner_client, two_runs):
    first, second = two_runs
    html = owner_client.get(compare_url(first, second)).content.decode()
    assert 'hx-trigger="every 3s"' in html and 'id="live-note"' in html
    partial = owner_client.get(compare_url(first, second), headers={"HX-Request": "true"}).content.decode()
    assert partial.lstrip().startswith('<div id="compare-body"') and "<h1>" not in partial
    second.mark_completed({})
    html = owner_client.get(compare_url(first, second)).content.decode()
    assert "hx-trigger=\"every" not in html  # nothing left to update: polling stops


def test_it_takes_the_runs_lists_checkboxes(owner_client, two_runs):
    first, second = two_runs
    url = reverse("results:compare") + f"?runs={first.pk}&runs={second.pk}"
    assert owner_client.get(url).status_code == 200
    html = owner_client.get(reverse("runs:list")).content.decode()
    assert f'name="runs" value="{first.pk}"' in html and 'id="compare-form"' in html


def test_it_offers_checkboxes_on_an_experiments_page(client, owner_client, owner, outsider, iris_spec):
    experiment = Experiment.objects.create(owner=owner, name="Iris study", spec=iris_spec)
    runs = [launch_run(owner, experiment=experiment, name=f"Try {i}") for i in (1, 2)]
    url = reverse("experiments:detail", args=[experiment.pk])
    html = owner_client.get(url).content.decode()
    for run in runs:
        assert f'form="compare-form" name="runs" value="{run.pk}"' in html
    assert f'<form id="compare-form" method="get" action="{reverse("results:compare")}">' in html
    # What ticking both and submitting sends is a comparison the owner may open.
    picked = reverse("results:compare") + "?" + "&".join(f"runs={r.pk}" for r in runs)
    assert owner_client.get(picked).status_code == 200
    client.force_login(outsider)
    response = client.get(url)
    assert response.status_code == 404 and b"compare-form" not in response.content


def test_it_shows_only_the_spec_difference_for_different_tasks(owner_client, owner, two_runs):
    first, _ = two_runs
    spec = {"dataset": {"kind": "builtin", "name": "diabetes"}, "task": "regression",
            "models": [{"estimator": "Ridge", "params": {"alpha": [1.0]}}], "cv": {"kind": "kfold", "folds": 3},
            "metric": "rmse"}
    regression = launch_run(owner, spec=spec, name="Regression")
    html = owner_client.get(compare_url(first, regression)).content.decode()
    assert 'id="different-tasks"' in html and "cannot be compared" in html
    assert "mean ± std" not in html and "fold-svg" not in html
    assert '<tr class="differs"><th scope="row">task' in html


def test_it_explains_a_bad_selection(owner_client, two_runs):
    first, _ = two_runs
    response = owner_client.get(compare_url(first))
    assert response.status_code == 400 and "Pick 2 to 4 different runs" in response.content.decode()
    assert owner_client.get(reverse("results:compare") + "?runs=1,abc").status_code == 400


def test_it_is_404_when_any_run_is_not_yours(client, owner_client, outsider, media, iris_spec, two_runs):
    first, second = two_runs
    foreign = completed_run(outsider, media, iris_spec, name="Secret")
    assert owner_client.get(compare_url(first, foreign)).status_code == 404
    client.force_login(outsider)
    response = client.get(compare_url(foreign, first))
    assert response.status_code == 404 and b"First" not in response.content
    assert client.get(compare_url(first, second), headers={"HX-Request": "true"}).status_code == 404
    assert owner_client.get(reverse("results:compare") + f"?runs={first.pk},999999").status_code == 404


def test_it_requires_login(client, two_runs):
    response = client.get(compare_url(*two_runs))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def spec_paths(html):
    """The settings the spec table shows, by their row headers."""
    import re

    table = html[html.index('id="spec-table"'):]
    return re.findall(r'<tr(?: class="differs")?><th scope="row">([^<]+)<', table)


def test_it_shows_only_the_differing_settings_by_default(owner_client, two_runs):
    first, second = two_runs
    html = owner_client.get(compare_url(first, second)).content.decode()
    assert "1 of 17 settings differs, marked ≠." in html
    assert spec_paths(html) == ["cv.folds"] and "16 equal settings hidden." in html
    assert 'name="settings" value="differences" aria-controls="spec-table" checked' in html
    assert '<noscript><button class="btn btn-small" type="submit">Show</button></noscript>' in html
    # Unticked, the form sends only the hidden "all": every setting, the equal ones too.
    every = owner_client.get(compare_url(first, second) + "&settings=all").content.decode()
    assert len(spec_paths(every)) == 17 and {"cv.folds", "task"} <= set(spec_paths(every))
    assert 'aria-controls="spec-table" checked' not in every and "equal settings hidden" not in every
    ticked = owner_client.get(compare_url(first, second) + "&settings=all&settings=differences").content.decode()
    assert spec_paths(ticked) == ["cv.folds"]


def test_it_swaps_only_the_spec_table_for_htmx(owner_client, two_runs):
    first, second = two_runs
    response = owner_client.get(compare_url(first, second) + "&settings=all",
                                headers={"HX-Request": "true", "HX-Target": "spec-table"})
    fragment = response.content.decode()
    assert fragment.lstrip().startswith('<div class="table-wrap" id="spec-table"') and "<h1>" not in fragment
    assert len(spec_paths(fragment)) == 17 and 'id="compare-body"' not in fragment
    assert "HX-Target" in response["Vary"]


def test_it_shows_every_setting_when_none_differ(owner_client, owner, media, iris_spec):
    a, b = (completed_run(owner, media, iris_spec, name=n) for n in ("One", "Two"))
    html = owner_client.get(compare_url(a, b)).content.decode()
    assert "All 17 settings are the same." in html and 'id="differences-only"' not in html
    assert len(spec_paths(html)) == 17


def board_rows(html):
    """The side-by-side leaderboard, row by row: the variant and each cell's text, tags stripped."""
    import re

    table = html[html.index('class="metrics-table boards-compare"'):]
    table = table[:table.index("</table>")]
    rows = []
    for row in re.findall(r'<tr class="board-row[^"]*">(.*?)</tr>', table, re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        rows.append([" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in cells])
    return rows


def test_it_lines_up_both_leaderboards_by_variant(owner_client, two_runs):
    first, second = two_runs
    scores(second, 2, "B", [0.95] * 5)  # the same model as the first run's B, as variant 2 here too
    scores(second, 3, "A", [0.93] * 5)  # and its A, under another number: still one row
    html = owner_client.get(compare_url(first, second)).content.decode()
    assert f"Δ: the difference from run #{first.pk}" in html
    # First run's order (B, A), then what only the second has (C); "—" where a run has no such variant.
    assert board_rows(html) == [
        ["B", "★ 0.9700 ± 0.0082 (best of the row) rank 1 best", "0.9500 ± 0.0000 rank 1 best", "−0.0200 worse"],
        ["A", "0.9200 ± 0.0163 rank 2", "★ 0.9300 ± 0.0000 (best of the row) rank 2", "+0.0100 better"],
        ["C", "— not in this run", "0.8400 ± 0.0283 rank 3", "—"],
    ]
    assert html.count('class="num delta delta-worse"') == 1 and html.count('class="num delta delta-better"') == 1


def test_it_reads_the_side_by_side_scores_from_each_runs_leaderboard(two_runs):
    from results import leaderboard

    first, second = two_runs
    ctx = compare.compare([first, second])
    for i, run in enumerate((first, second)):
        board = leaderboard.leaderboard(run)
        for row in ctx["boards"]["rows"]:
            cell = row["cells"][i]
            if cell["variant"] is not None:
                mine = next(v for v in board["leaderboard"] if v["label"] == row["label"])
                assert cell["score"] == mine["primary"] and cell["variant"]["rank"] == mine["rank"]
