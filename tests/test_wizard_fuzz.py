"""Property tests: malformed CSV bytes and arbitrary wizard input never give a 500, always a page with a
message (or an accepted upload / the next step)."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from experiments import wizard
from datasets.models import Dataset

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

cells = st.one_of(st.text(max_size=8), st.integers(-5, 5).map(str), st.sampled_from(["", '"', "=1+1", "a,b", ";", "\t"]))
csv_text = st.lists(st.lists(cells, min_size=0, max_size=5), max_size=12).map(
    lambda rows: "\n".join(",".join(r) for r in rows))
csv_bytes = st.one_of(
    st.binary(max_size=300),
    csv_text.map(lambda t: t.encode("utf-8")),
    csv_text.map(lambda t: t.encode("utf-16")),
    csv_text.map(lambda t: t.encode("latin-1", "replace")),
)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@FUZZ
@given(content=csv_bytes)
def test_it_answers_any_upload_with_a_dataset_or_a_message(client, owner, content):
    client.force_login(owner)
    before = Dataset.objects.count()
    response = client.post("/datasets/upload/", {"file": SimpleUploadedFile("fuzz.csv", content)})
    if response.status_code == 302:
        assert Dataset.objects.count() == before + 1
        assert client.get(response["Location"]).status_code == 200  # its preview renders too
    else:
        assert response.status_code == 400
        assert Dataset.objects.count() == before
        assert re.search(r'class="field-error"[^>]*role="alert">[^<]+', response.content.decode())


values = st.one_of(st.text(max_size=12), st.integers(-10**12, 10**12).map(str), st.floats().map(str),
                   st.sampled_from(["", "1..5", "0.1..1 step 0.1", "none", "true", "1..x", "csv:999999999999999999999",
                                    "builtin:iris", "synthetic:regression", "-1", "1e400", "nan"]))


def field_names():
    names = ["source", "n_samples", "n_features", "noise", "n_classes", "data_seed", "target", "task", "imputer",
             "encode", "n_branches", "b0_name", "b0_scaler", "b0_degree", "b0_pca", "b0_k", "b1_name", "b1_degree",
             "kind", "folds", "shuffle", "seed", "metric", "runner", "epochs", "patience", "validation_fraction",
             "run", "name", "description", "use_LogisticRegression", "LogisticRegression__C",
             "LogisticRegression__solver", "use_SVC", "SVC__gamma", "use_Ridge", "Ridge__alpha"]
    return st.sampled_from(names)


@FUZZ
@given(step=st.sampled_from(wizard.STEP_NAMES + ["nonsense"]), data=st.dictionaries(field_names(), values, max_size=10),
       action=st.sampled_from(["next", "back", "save", "launch", "add_branch", "other"]))
def test_it_answers_any_wizard_input_without_a_server_error(client, owner, step, data, action):
    client.force_login(owner)
    response = client.post("/experiments/new/", {"step": step, "action": action, **data})
    assert response.status_code in (200, 302, 400)
    if response.status_code == 400:
        body = response.content.decode()
        assert 'role="alert"' in body or "errorlist" in body  # a message says what to fix
    follow = client.get(response["Location"]) if response.status_code == 302 else None
    assert follow is None or follow.status_code == 200


query_values = st.one_of(st.text(max_size=25), st.integers().map(str), st.sampled_from(
    ["csv:1", "csv:²", "csv:99999999999999999999", "builtin:iris", "synthetic:classification", "synthetic:x", "nan"]))


@FUZZ
@given(path=st.sampled_from(["/experiments/new/", "/experiments/new/target-check/"]),
       query=st.dictionaries(st.sampled_from(["dataset", "from_run", "target", "task", "folds", "n_samples", "noise",
                                              "n_classes", "step", "reset"]), query_values, max_size=5))
def test_it_answers_any_query_string_without_a_server_error(client, owner, path, query):
    client.force_login(owner)
    response = client.get(path, query)
    assert response.status_code in (200, 302, 404)
    if response.status_code == 302:
        assert client.get(response["Location"]).status_code == 200
