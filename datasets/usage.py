"""What uses a dataset: the saved experiments and the runs whose spec names it, for the dataset pages ("used by",
the run counts, what a delete leaves without data).

Both live in apps above this one (the layers contract in pyproject.toml), so this app does not import them: each
registers its model here as it starts (its AppConfig.ready), and the pages ask through `using`. A model is any
owned model with a `spec` JSON field holding {"dataset": {"kind": "csv", "id": ...}}.
"""

from collections import Counter

_USERS = {}  # "runs" / "experiments" -> (model, the statuses that count as still active, or None)


def register(name, model, active=None):
    """Let the dataset pages count `model`'s objects that use a dataset; `active`: the values of its `status`
    that mean "still queued or running" (a delete warns about those)."""
    _USERS[name] = (model, active)


def _objects(name, user):
    model, _ = _USERS[name]
    return model.objects.filter(owner=user, spec__dataset__kind="csv")


def using(name, user, dataset):
    """The user's `name` objects (registered above) whose spec uses `dataset`."""
    return _objects(name, user).filter(spec__dataset__id=dataset.pk)


def active_using(name, user, dataset):
    return using(name, user, dataset).filter(status__in=_USERS[name][1])


def counts(name, user):
    """{dataset id: how many of the user's `name` objects use it}."""
    return Counter(_objects(name, user).values_list("spec__dataset__id", flat=True))
