"""Promoting a completed run's exported model into the registry: the one way, for the API and the pages."""

import os

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction

from experiments.files import file_sha256
from experiments.models import RegisteredModel

from .models import Run

NAME_TAKEN = "You already have a model with this name."


class CannotPromote(Exception):
    """The run has nothing to promote (not completed, or no exported model); the message says which."""


class NameTaken(Exception):
    """The owner already has a model with this name."""


def model_path(run):
    """The run's bundle on disk (model_file is relative to MEDIA_ROOT), or None."""
    if not run.model_file:
        return None
    path = os.path.join(settings.MEDIA_ROOT, run.model_file)
    return path if os.path.isfile(path) else None


def promote(run, owner, name):
    """Copy the run's bundle into a new RegisteredModel named `name`, owned by `owner`; returns it.

    The copy keeps its own checksum, taken from the copied bytes, so the registry never depends on the run's
    file again. Raises CannotPromote or NameTaken with a message a user can read.
    """
    path = model_path(run) if run.status == Run.Status.COMPLETED else None
    if path is None:
        raise CannotPromote("Only a completed run with an exported model can be promoted.")
    if RegisteredModel.objects.filter(owner=owner, name=name).exists():
        raise NameTaken(NAME_TAKEN)
    model = RegisteredModel(owner=owner, name=name, run=run, metric=run.metric, score=run.best_score)
    with open(path, "rb") as f:
        model.sha256 = file_sha256(f)
        model.size_bytes = os.fstat(f.fileno()).st_size
        model.file.save(os.path.basename(path), File(f), save=False)
    try:
        with transaction.atomic():
            model.save()
    except IntegrityError:  # the same name, promoted at the same moment
        model.file.delete(save=False)
        raise NameTaken(NAME_TAKEN) from None
    return model
