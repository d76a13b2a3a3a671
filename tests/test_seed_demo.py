from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from experiments.models import Experiment, validate_spec_for
from engine.spec import branches, total_fits, variants

pytestmark = pytest.mark.django_db

IRIS = "Iris — logistic regression grid"
DIABETES = "Diabetes — ridge"
LONG = "Synthetic — random forest (about two minutes)"


def seed():
    out = StringIO()
    call_command("seed_demo", stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture(autouse=True)
def local_defaults(settings, monkeypatch):
    settings.DEBUG = True  # The test runner turns DEBUG off; seed_demo's defaults are for DEBUG on.
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)


def test_it_creates_the_demo_user_and_prints_its_login():
    out = seed()
    demo = User.objects.get(username="demo")
    assert not demo.is_staff and not demo.is_superuser
    assert demo.check_password("demo-runwatch")
    assert "demo / demo-runwatch" in out


def test_it_creates_a_superuser_for_the_admin(client):
    out = seed()
    admin = User.objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    assert "admin / admin-runwatch" in out
    assert client.login(username="admin", password="admin-runwatch")
    assert client.get("/admin/").status_code == 200


def test_it_takes_passwords_from_the_environment(monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "a-demo-secret-7")
    monkeypatch.setenv("ADMIN_PASSWORD", "an-admin-secret-7")
    out = seed()
    assert User.objects.get(username="demo").check_password("a-demo-secret-7")
    assert User.objects.get(username="admin").check_password("an-admin-secret-7")
    assert "demo / a-demo-secret-7" in out


def test_it_refuses_default_passwords_with_debug_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEMO_PASSWORD"):
        seed()
    assert not User.objects.exists()


def test_it_creates_the_demo_experiments_with_valid_specs():
    seed()
    demo = User.objects.get(username="demo")
    experiments = {e.name: e for e in Experiment.objects.filter(owner=demo)}
    assert set(experiments) == {IRIS, DIABETES, LONG}
    for experiment in experiments.values():
        assert validate_spec_for(demo, experiment.spec) == experiment.spec
        experiment.full_clean()

    iris = experiments[IRIS].spec
    assert iris["task"] == "classification" and iris["dataset"] == {"kind": "builtin", "name": "iris"}
    assert iris["cv"]["folds"] == 5
    assert [name for name, _ in branches(iris)] == ["standardised", "min-max"]
    assert {v["estimator"] for v in variants(iris)} == {"LogisticRegression", "KNeighborsClassifier"}
    assert total_fits(iris) == 2 * 5 * 5
    diabetes = experiments[DIABETES].spec
    assert diabetes["task"] == "regression" and diabetes["metric"] == "r2"
    long = experiments[LONG].spec  # the one to watch and stop: 15 forest fits on 20,000 rows, then a refit
    assert long["dataset"]["n_samples"] == 20000 and total_fits(long) == 3 * 5


def test_it_is_idempotent():
    seed()
    first = {e.pk: e.spec for e in Experiment.objects.all()}
    out = seed()
    assert User.objects.filter(username__in=["demo", "admin"]).count() == 2
    assert {e.pk: e.spec for e in Experiment.objects.all()} == first
    assert "exists already" in out
    assert "demo / demo-runwatch" in out


def test_it_leaves_a_changed_password_and_says_so():
    seed()
    demo = User.objects.get(username="demo")
    demo.set_password("my-own-password-9")
    demo.save()
    out = seed()
    demo.refresh_from_db()
    assert demo.check_password("my-own-password-9")
    assert "changepassword demo" in out


def test_it_leaves_an_edited_demo_experiment_alone():
    seed()
    iris = Experiment.objects.get(name=IRIS)
    iris.description = "My notes"
    iris.save()
    seed()
    iris.refresh_from_db()
    assert iris.description == "My notes"
    assert Experiment.objects.filter(name=IRIS).count() == 1


def test_it_does_not_touch_other_users_experiments(owner, outsider, iris_spec):
    mine = Experiment.objects.create(owner=owner, name=IRIS, spec=iris_spec)
    seed()
    mine.refresh_from_db()
    assert mine.owner == owner and mine.spec == iris_spec
    assert Experiment.objects.filter(name=IRIS).count() == 2
    assert not Experiment.objects.filter(owner=outsider).exists()
