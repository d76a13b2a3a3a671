"""Issue 31, point 7: every id or number a runs page, fragment or API call takes from the request. Anything that
is not one (a word, a fraction, a NUL, a negative, past PostgreSQL's bigint) is a field error or a 404, never a
500 from a query given a value it cannot take."""

import pytest
from django.urls import reverse

from runs.control import launch_run
from runs.forms import CHOOSE
from runs.models import Run
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db

NOT_IDS = ["abc", "1.5", "\x00", "1\x00", "-1", "0", str(2**63), str(2**64), "1e3", " ", "٣"]
HUGE = 2**64


@pytest.fixture
def run(owner, iris_spec):
    return launch_run(owner, spec=iris_spec, name="Target")


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.mark.parametrize("value", NOT_IDS)
def test_it_answers_a_launch_of_no_experiment_with_a_form_error(owner_client, experiment, value):
    response = owner_client.post(reverse("runs:launch"), {"experiment": value})
    assert response.status_code == 400
    message = "Null characters are not allowed." if "\x00" in value else CHOOSE
    assert f'id="launch-experiment-error" role="alert">{message}</p>' in response.content.decode()
    assert not Run.objects.exists()


def test_it_refuses_someone_elses_experiment_on_the_launch_form(client, outsider, experiment):
    client.force_login(outsider)
    response = client.post(reverse("runs:launch"), {"experiment": experiment.pk})
    assert response.status_code == 400 and CHOOSE in response.content.decode()
    assert not Run.objects.exists()


@pytest.mark.parametrize("value", NOT_IDS)
def test_it_never_answers_500_to_a_bad_number_in_a_page_query(owner_client, run, value):
    pages = [
        (reverse("runs:list"), {"experiment": value}),
        (reverse("runs:list"), {"page": value}),
        (reverse("runs:rows"), {"ids": value}),
        (reverse("runs:rows"), {"ids": f"{run.pk},{value}"}),
        (reverse("runs:rows"), {"after": value}),
        (reverse("live:logs", args=[run.pk]), {"before": value}),
        (reverse("live:live", args=[run.pk]), {"after": value}),
        (reverse("results:run", args=[run.pk]), {"sort": value, "dir": value, "row": f"default/{value}"}),
        (reverse("results:compare"), {"runs": f"{run.pk},{value}"}),
    ]
    for url, params in pages:
        response = owner_client.get(url, params)
        assert response.status_code in (200, 286, 400, 404), (url, params, response.status_code)


@pytest.mark.parametrize("value", NOT_IDS)
def test_it_never_answers_500_to_a_bad_number_in_the_api(owner, run, value):
    api = client_for(owner)
    calls = [
        api.get("/api/v1/runs/", {"experiment": value}),
        api.get("/api/v1/runs/", {"page": value}),
        api.get(f"/api/v1/runs/{run.pk}/events/", {"after": value, "limit": value}),
        api.get(f"/api/v1/runs/{run.pk}/metrics/", {"variant": value, "fold": value, "epoch": value}),
        api.get(f"/api/v1/runs/{run.pk}/logs/", {"fold": value, "variant": value}),
        api.get(f"/api/v1/runs/{run.pk}/wait/", {"timeout": value}),
        api.post("/api/v1/runs/", {"experiment": value}, format="json"),
    ]
    for response in calls:
        assert response.status_code in (200, 400, 404), (response.request["PATH_INFO"], response.status_code)
    assert Run.objects.count() == 1


def test_it_answers_404_to_an_id_past_the_database_in_the_path(owner_client, owner, run):
    for name in ("live:detail", "live:logs", "live:live", "results:run", "results:model"):
        assert owner_client.get(reverse(name, args=[HUGE])).status_code == 404, name
    for name in ("live:cancel", "results:rerun", "results:promote"):
        assert owner_client.post(reverse(name, args=[HUGE]), {"name": "x"}).status_code == 404, name
    api = client_for(owner)
    for path in (f"/api/v1/runs/{HUGE}/", f"/api/v1/runs/{HUGE}/wait/?timeout=0", "/api/v1/runs/abc/",
                 f"/api/v1/runs/{HUGE}/events/"):
        assert api.get(path).status_code == 404, path
    assert api.post(f"/api/v1/runs/{HUGE}/cancel/").status_code == 404
    assert api.post("/api/v1/runs/", {"experiment": HUGE}, format="json").status_code == 400
    assert api.post("/api/v1/runs/", {"experiment": 1.5}, format="json").status_code == 400


def test_it_refuses_a_model_name_with_a_nul_on_the_results_page(owner_client, owner, iris_spec, settings, tmp_path):
    from tests.test_results_page import completed_run

    settings.MEDIA_ROOT = tmp_path
    done = completed_run(owner, tmp_path, iris_spec)
    response = owner_client.post(reverse("results:promote", args=[done.pk]), {"name": "iris\x00v1"}, follow=True)
    assert response.status_code == 200
    assert "Null characters are not allowed." in response.content.decode()
    assert not owner.registered_models.exists()
    response = owner_client.post(reverse("results:promote", args=[done.pk]), {"name": "  "}, follow=True)
    assert "Give the model a name to promote it under." in response.content.decode()
