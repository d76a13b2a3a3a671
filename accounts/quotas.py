"""What each user may use: the one place that turns a user's Quota row and the settings' defaults into numbers.

    quota_for(user)              Allowance: running slots, queued runs, largest limits, storage
    spec_ceilings_for(user, c)   the spec ceilings `c` lowered to what the user may ask for
    check_storage(user, extra)   ValidationError when `extra` more bytes would pass the user's storage
    lock_user(user_id)           the user's row lock, which every check-then-store of quota'd things takes
    QuotaExceeded                a launch refused; its message says which quota and what to do

Quotas apply to staff too, with the same defaults: staff can raise their own in the admin, and that leaves a
trace there, where a silent exemption would not. The scheduling of runs by these numbers lives with the runs
(runs/worker/scheduling.py). Datasets and models are looked up by name, not imported: they depend on this app.
"""

from dataclasses import dataclass, replace

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Sum

from .models import Quota

MB = 1024 * 1024
FIELDS = ("running", "queued", "memory_mb", "time_seconds", "storage_mb")
DEFAULTS = {"running": "QUOTA_RUNNING", "queued": "QUOTA_QUEUED", "memory_mb": "QUOTA_MEMORY_MB",
            "time_seconds": "QUOTA_TIME_SECONDS", "storage_mb": "QUOTA_STORAGE_MB"}
ASK_STAFF = "ask staff to raise your quota"
YOUR_QUOTA = f"the most your quota allows ({ASK_STAFF} for more)"


class QuotaExceeded(Exception):
    """A launch the user's quota does not allow; str() is the message to show them."""


@dataclass(frozen=True)
class Allowance:
    running: int
    queued: int
    memory_mb: int
    time_seconds: int
    storage_mb: int

    @property
    def storage_bytes(self):
        return self.storage_mb * MB


def lock_user(user_id):
    """Lock the user's row until the transaction ends: a count against a quota and the row that uses it then
    commit together, and two requests at once cannot both take the last of it. Call inside transaction.atomic."""
    list(get_user_model().objects.select_for_update().filter(pk=user_id).values_list("pk"))


def defaults():
    return Allowance(**{name: int(settings.RUNWATCH[key]) for name, key in DEFAULTS.items()})


def quota_for(user):
    """The user's Allowance (a user, or a user id): their own numbers where staff set them, else the defaults."""
    user_id = getattr(user, "pk", user)
    base = defaults()
    row = Quota.objects.filter(user_id=user_id).values(*FIELDS).first() if user_id else None
    if not row:
        return base
    return replace(base, **{name: value for name, value in row.items() if value is not None})


def spec_ceilings_for(user, ceilings):
    """`ceilings` (engine.spec.Ceilings, the server's) lowered to the largest limits `user` may ask for.
    Nobody (user None) gets the defaults."""
    allowance = quota_for(user) if user is not None else defaults()
    lowered = {}
    if allowance.memory_mb < ceilings.memory_mb:
        lowered.update(memory_mb=allowance.memory_mb, memory_set_by=YOUR_QUOTA)
    if allowance.time_seconds < ceilings.time_seconds:
        lowered.update(time_seconds=allowance.time_seconds, time_set_by=YOUR_QUOTA)
    return replace(ceilings, **lowered)


def storage_used(user):
    """Bytes of the user's uploaded datasets and promoted models."""
    total = 0
    for model in (apps.get_model("datasets", "Dataset"), apps.get_model("experiments", "RegisteredModel")):
        total += model.objects.filter(owner_id=user.pk).aggregate(total=Sum("size_bytes"))["total"] or 0
    return total


def _size(n):
    return f"{n / MB:,.1f} MB" if n < 1024 * MB else f"{n / (1024 * MB):,.2f} GB"


def check_storage(user, extra_bytes):
    """Raise ValidationError (code "storage_quota") if `extra_bytes` more would pass the user's storage quota.

    Call it before storing anything new for the user (a dataset upload, a model promotion), and again under
    lock_user in the transaction that records it. The message says how much is used, how much the new file
    needs and what to do."""
    allowed = quota_for(user).storage_bytes
    used = storage_used(user)
    if used + extra_bytes > allowed:
        raise ValidationError(
            f"Not enough storage left: this needs {_size(extra_bytes)}, and your datasets and models already use "
            f"{_size(used)} of your {_size(allowed)}. Delete some you no longer need, or {ASK_STAFF}.",
            code="storage_quota")
