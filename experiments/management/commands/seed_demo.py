"""`manage.py seed_demo`: the demo login and experiments that `make run` sets up. Safe to run again.

Two accounts: "demo", an ordinary user who owns the demo experiments (what a new user sees), and "admin",
a superuser for the admin site and the queue dashboard. Their passwords come from DEMO_PASSWORD and
ADMIN_PASSWORD, with fixed defaults for local use only: with DEBUG off the defaults are refused.
An account that exists already is left alone, its password included; the command only says whether the
printed login still works.
"""

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from experiments.models import Experiment, validate_spec_for
from engine.spec import SpecError, total_fits

DEFAULT_PASSWORDS = {"demo": "demo-runwatch", "admin": "admin-runwatch"}

DEMO_EXPERIMENTS = [
    {
        "name": "Iris — logistic regression grid",
        "description": (
            "Classify iris species. A small grid of logistic regression and nearest-neighbour variants, each "
            "under two preprocessing branches, scored by 5-fold stratified cross-validation."
        ),
        "spec": {
            "runner": "cv",
            "task": "classification",
            "dataset": {"kind": "builtin", "name": "iris"},
            "target": "target",
            "branches": [
                {"name": "standardised", "preprocessing": [{"name": "standard_scaler"}]},
                {"name": "min-max", "preprocessing": [{"name": "minmax_scaler"}]},
            ],
            "models": [
                {"estimator": "LogisticRegression", "params": {"C": [0.1, 1.0, 10.0], "max_iter": [1000]}},
                {"estimator": "KNeighborsClassifier", "params": {"n_neighbors": [3, 7]}},
            ],
            "cv": {"kind": "stratified_kfold", "folds": 5, "shuffle": True, "seed": 42},
            "metric": "accuracy",
            "seed": 42,
        },
    },
    {
        # The other demos end in seconds; this one runs about two minutes on a laptop core, long enough to
        # watch the folds arrive and to try the Stop button.
        "name": "Synthetic — random forest (about two minutes)",
        "description": (
            "A 20,000-row synthetic classification problem. Random forests of 50, 100 and 200 trees, 5-fold "
            "stratified cross-validation, then the best is refitted. Long enough to watch it live, or stop it."
        ),
        "spec": {
            "runner": "cv",
            "task": "classification",
            "dataset": {"kind": "synthetic", "generator": "classification", "n_samples": 20000, "n_features": 30,
                        "n_classes": 2, "noise": 0.05, "seed": 7},
            "target": "target",
            "models": [{"estimator": "RandomForestClassifier", "params": {"n_estimators": [50, 100, 200],
                                                                          "random_state": [0]}}],
            "cv": {"kind": "stratified_kfold", "folds": 5, "shuffle": True, "seed": 42},
            "metric": "accuracy",
            "seed": 42,
        },
    },
    {
        "name": "Diabetes — ridge",
        "description": "Predict disease progression one year on. Ridge regression over a range of alphas, 5-fold CV.",
        "spec": {
            "runner": "cv",
            "task": "regression",
            "dataset": {"kind": "builtin", "name": "diabetes"},
            "target": "target",
            "preprocessing": [{"name": "standard_scaler"}],
            "models": [{"estimator": "Ridge", "params": {"alpha": [0.1, 1.0, 10.0, 100.0]}}],
            "cv": {"kind": "kfold", "folds": 5, "shuffle": True, "seed": 42},
            "metric": "r2",
            "seed": 42,
        },
    },
]


class Command(BaseCommand):
    help = "Create the demo account, an admin account and the demo experiments (idempotent)."

    def handle(self, *args, **options):
        with transaction.atomic():
            demo, demo_password = self.account("demo", "DEMO_PASSWORD", superuser=False)
            admin, admin_password = self.account("admin", "ADMIN_PASSWORD", superuser=True)
            for entry in DEMO_EXPERIMENTS:
                self.experiment(demo, entry)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Log in to Runwatch:"))
        self.login_line(demo, demo_password, "runs, experiments")
        self.login_line(admin, admin_password, "the admin at /admin/ and the queues at /admin/rq/")

    def password(self, username, variable):
        given = os.environ.get(variable)
        if given:
            return given
        if not settings.DEBUG:
            raise CommandError(
                f"DEBUG is off, so seed_demo will not create {username!r} with the well-known default password. "
                f"Set {variable} to a password of your own (or DEBUG=1 on a machine of your own)."
            )
        return DEFAULT_PASSWORDS[username]

    def account(self, username, variable, superuser):
        password = self.password(username, variable)
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, email=f"{username}@example.org", is_staff=superuser, is_superuser=superuser)
            user.set_password(password)
            user.save()
            self.stdout.write(f"Created the {'superuser' if superuser else 'user'} {username!r}.")
        else:
            self.stdout.write(f"The user {username!r} exists already; left as it is.")
            if superuser and not user.is_superuser:
                self.stderr.write(f"Note: {username!r} is not a superuser; `manage.py createsuperuser` makes one.")
        return user, password

    def experiment(self, owner, entry):
        try:
            spec = validate_spec_for(owner, entry["spec"])
        except SpecError as e:  # A catalog change broke the demo: say which field, do not seed a bad spec.
            raise CommandError(f"The demo experiment {entry['name']!r} no longer validates: {e}") from None
        experiment, created = Experiment.objects.get_or_create(
            owner=owner, name=entry["name"], defaults={"description": entry["description"], "spec": spec}
        )
        if created:
            self.stdout.write(f"Created the experiment {experiment.name!r} ({total_fits(spec)} fits per run).")
        else:
            self.stdout.write(f"The experiment {experiment.name!r} exists already; left as it is.")
        return experiment

    def login_line(self, user, password, what):
        if user.check_password(password):
            self.stdout.write(f"  {user.username} / {password}   ({what})")
        else:
            self.stdout.write(
                f"  {user.username} / (changed since it was created; reset it with "
                f"`manage.py changepassword {user.username}`)   ({what})"
            )
