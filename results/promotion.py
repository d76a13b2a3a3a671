"""Promoting a completed run's exported model into the registry: the one way, for the API and the pages."""

import os

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.quotas import check_storage, lock_user
from engine.files import file_sha256, path_size
from experiments.models import RegisteredModel
from datasets.storage import open_stored

from runs.models import Run

NAME_TAKEN = "You already have a model with this name."
NOTHING_TO_PROMOTE = "Only a completed run with an exported model can be promoted."


class CannotPromote(Exception):
    """The run has nothing to promote (not completed, or no exported model); the message says which."""


class NameTaken(Exception):
    """The owner already has a model with this name."""


class OverQuota(Exception):
    """The copy would pass the owner's storage quota (accounts.quotas.check_storage); the message says so."""


def _check_storage(owner, size):
    try:
        check_storage(owner, size)
    except ValidationError as e:
        raise OverQuota(e.messages[0]) from None


def promote(run, owner, name):
    """Copy the run's bundle into a new RegisteredModel named `name`, owned by `owner`; returns it.

    The copy keeps its own checksum, taken from the copied bytes, so the registry never depends on the run's
    file again. Both files go through the storage (datasets.storage). Raises CannotPromote, NameTaken or
    OverQuota with a message a user can read. The storage quota is checked before the copy, and again under the
    owner's lock as it is recorded, so two promotions at once cannot both take the last of it.
    """
    if run.status != Run.Status.COMPLETED or not run.model_file:
        raise CannotPromote(NOTHING_TO_PROMOTE)
    if RegisteredModel.objects.filter(owner=owner, name=name).exists():
        raise NameTaken(NAME_TAKEN)
    model = RegisteredModel(owner=owner, name=name, run=run, metric=run.metric, score=run.best_score)
    try:
        source = open_stored(run.model_file)
    except FileNotFoundError:
        raise CannotPromote(NOTHING_TO_PROMOTE) from None
    with source:
        model.size_bytes = path_size(source)
        _check_storage(owner, model.size_bytes)
        model.sha256 = file_sha256(source)
        model.file.save(os.path.basename(run.model_file), source, save=False)
    try:
        with transaction.atomic():
            lock_user(owner.pk)
            _check_storage(owner, model.size_bytes)
            model.save()
    except IntegrityError:  # the same name, promoted at the same moment
        model.file.delete(save=False)
        raise NameTaken(NAME_TAKEN) from None
    except OverQuota:
        model.file.delete(save=False)
        raise
    return model
