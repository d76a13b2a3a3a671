"""The one access policy: who may see, and who may act on, an owned object (a run, an experiment, a dataset, a
registered model) and the stream of a run.

    visible(viewer, queryset)   the objects of `queryset` the viewer may see
    can_view(viewer, obj)       the same rule for one object already loaded (the WebSocket's check)
    can_act(viewer, obj)        stop, re-run, promote, download, share: a signed-in viewer who may see it

The rule: an owner sees and acts on their own objects, staff on everyone's, nobody else on any. A share link's
bearer (ShareGrant) sees the objects the link names (one run, or the runs of a shared comparison), read-only: it
never acts, and nothing else is visible through it. Every door (pages, API, WebSocket, downloads) asks here, so the rule is written once.

This app sits below every other (runs, experiments and sharing import it), so it names models by their label
("runs.run"), never by import.
"""

from dataclasses import dataclass

from django.db import models
from django.http import Http404


@dataclass(frozen=True)
class ShareGrant:
    """The bearer of a share link: may see the objects `label`/`pks` and nothing else, and may act on none."""

    link_id: int
    label: str  # the model's label_lower, e.g. "runs.run"
    pks: tuple  # one run's id, or the runs of a shared comparison

    # Enough of a user's face that code asking `viewer.is_authenticated` / `is_staff` gets a safe answer.
    is_authenticated = False
    is_staff = False

    def grants(self, obj):
        return obj._meta.label_lower == self.label and obj.pk in self.pks


def visible(viewer, queryset):
    if isinstance(viewer, ShareGrant):
        if queryset.model._meta.label_lower != viewer.label:
            return queryset.none()
        return queryset.filter(pk__in=viewer.pks)
    if viewer is None or not viewer.is_authenticated:
        return queryset.none()
    return queryset if viewer.is_staff else queryset.filter(owner_id=viewer.pk)


def can_view(viewer, obj):
    if isinstance(viewer, ShareGrant):
        return viewer.grants(obj)
    return can_act(viewer, obj)


def can_act(viewer, obj):
    if viewer is None or isinstance(viewer, ShareGrant) or not viewer.is_authenticated:
        return False
    return viewer.is_staff or viewer.pk == obj.owner_id


class OwnedQuerySet(models.QuerySet):
    """The manager of every owned model (datasets, experiments, promoted models): `visible_to` is `visible`."""

    def visible_to(self, user):
        """What `user` may see and use: their own objects, or everything for staff."""
        return visible(user, self)


def get_visible_or_404(viewer, queryset, **lookup):
    """The one object of `queryset` matching `lookup` that the viewer may see; 404 for a missing one and for
    someone else's alike, so ids cannot be probed."""
    obj = visible(viewer, queryset).filter(**lookup).first()
    if obj is None:
        raise Http404(f"No {queryset.model._meta.verbose_name} matches the given query.")
    return obj
