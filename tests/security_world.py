"""The owner's things for the security tests: one of each kind a route can name, all marked with MARK.

A response that carries MARK (or another of `leak_markers`) to anybody but the owner has leaked the owner's
data. `snapshot` records every row and file of the owner's, so a test can prove nothing of theirs changed.
"""

import hashlib
import json
from types import SimpleNamespace

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core import serializers
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token

from datasets.forms import DatasetUploadForm
from datasets.models import Dataset
from experiments.models import Experiment, RegisteredModel
from results import promotion
from runs.models import FoldDiagnostic, FoldMetric, LogEntry, Run, RunEvent, RunStep
from sharing.models import ShareLink
from tests.helpers import reporter_for
from tests.test_results_page import completed_run

MARK = "Zq7ownerSecret"
CSV = f"{MARK}_city,size,label\nParis{MARK},1.5,yes\nRome,2.5,no\nOslo,3.5,yes\nLima,4.5,no\n"


def diagnosed_folds(run):
    """The out-of-fold plots' data of every fold the run scored, as a fit child makes it (engine.diagnostics)."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from engine import diagnostics

    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    model = LogisticRegression().fit(X[:40], y[:40])
    for branch, variant, fold in FoldMetric.objects.filter(run=run).values_list("branch", "variant", "fold").distinct():
        FoldDiagnostic.objects.create(run=run, branch=branch, variant=variant, fold=fold,
                                      data=diagnostics.fold(model, X[40:], y[40:], "classification", seed=fold))


def build_world(owner, media, spec):
    upload = DatasetUploadForm({"name": f"{MARK} dataset"}, {"file": SimpleUploadedFile(f"{MARK}.csv", CSV.encode())})
    assert upload.is_valid(), upload.errors
    dataset = upload.save(owner)
    experiment = Experiment.objects.create(owner=owner, name=f"{MARK} experiment", spec=spec)
    run = completed_run(owner, media, spec, content=f"bundle of {MARK}".encode(), name=f"{MARK} run")
    Run.objects.filter(pk=run.pk).update(experiment=experiment, rq_job_id=f"job-{run.pk}")
    # A log line and a step as the engine writes them, after the run's own events.
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING)
    reporter = reporter_for(run)
    reporter.log("info", f"{MARK} log line")
    step = RunStep.objects.filter(run=run).order_by("order").first()
    assert step is not None, "launch_run creates the run's steps"
    reporter.step(step.name, RunStep.Status.COMPLETED, f"{MARK} step detail")
    Run.objects.filter(pk=run.pk).update(status=Run.Status.COMPLETED)
    run.refresh_from_db()
    diagnosed_folds(run)
    model = promotion.promote(run, owner, f"{MARK}-model")
    world = SimpleNamespace(
        owner=owner, dataset=dataset, experiment=experiment, run=run, model=model,
        step=RunStep.objects.filter(run=run).first(), fold=FoldMetric.objects.filter(run=run).first(),
        log=LogEntry.objects.filter(run=run).first(), event=RunEvent.objects.filter(run=run).first(),
        token=Token.objects.create(user=owner), group=Group.objects.create(name=f"{MARK} group"),
        run_content_type=ContentType.objects.get_for_model(Run),
        share_link=ShareLink.create_for(run, owner)[0],
        # The login throttle's records of the owner's logins: staff-only admin screens.
        **login_records(owner),
    )
    assert world.step and world.log and world.event and world.fold, "the owner's run must have every kind of row"
    return world


def login_records(owner):
    where = {"username": owner.username, "ip_address": "192.0.2.10", "user_agent": f"{MARK} agent"}
    return {
        "access_attempt": AccessAttempt.objects.create(**where, failures_since_start=1, get_data="", post_data=""),
        "access_log": AccessLog.objects.create(**where),
        "access_failure": AccessFailureLog.objects.create(**where),
    }


def leak_markers(world):
    """Strings only the owner's data contains."""
    return [MARK, world.token.key, world.model.sha256, world.dataset.sha256, world.owner.email]


def leaked(world, body):
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return [m for m in leak_markers(world) if m and m in text]


def snapshot(world):
    """Every row of the owner's, serialized, and the bytes of their files."""
    owner = world.owner
    querysets = [
        Run.objects.filter(owner=owner), Experiment.objects.filter(owner=owner),
        Dataset.objects.filter(owner=owner), RegisteredModel.objects.filter(owner=owner),
        RunStep.objects.filter(run__owner=owner), FoldMetric.objects.filter(run__owner=owner),
        LogEntry.objects.filter(run__owner=owner), RunEvent.objects.filter(run__owner=owner),
        Token.objects.filter(user=owner), type(owner).objects.filter(pk=owner.pk), Group.objects.all(),
    ]
    rows = {f"{qs.model.__name__} {o['pk']}": o["fields"] for qs in querysets
            for o in json.loads(serializers.serialize("json", qs.order_by("pk")))}
    files = {}
    storage = world.dataset.file.storage
    for name in [world.dataset.file.name, world.run.model_file, world.model.file.name]:
        files[name] = hashlib.sha256(storage.open(name, "rb").read()).hexdigest() if storage.exists(name) else None
    return {**rows, **{f"file {name}": digest for name, digest in files.items()}}


def changes(before, after):
    """What differs between two snapshots, field by field, for a readable failure."""
    out = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            out += [f"{key}.{f}: {old.get(f)!r} -> {new.get(f)!r}" for f in sorted(set(old) | set(new))
                    if old.get(f) != new.get(f)]
        else:
            out.append(f"{key}: {old!r} -> {new!r}")
    return out
