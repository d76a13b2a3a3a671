"""A share link: a read-only view of one run, or of a comparison of two to four runs, for anyone holding its
token. A run's link has `run`; a comparison's has no `run` and its runs, in the compared order, in `compared`.

The token (secrets.token_urlsafe(32): 256 random bits) is shown once, when the link is made; only its SHA-256
is stored, so a database dump gives nobody a working link. A plain hash suffices because the token is random,
not a password: there is nothing to guess from it. A link works until it is revoked or its expiry passes;
revoking it closes its open sockets (the consumers join the link's channel-layer group; revoke() sends to it
after the commit).
"""

import hashlib
import secrets

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.apps import apps
from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from accounts.access import ShareGrant

STATUSES = ["active", "expired", "revoked"]  # ShareLink.status (and its enum in the OpenAPI schema)
REVOKED = "share.revoked"  # the group message that closes a link's sockets (sharing.consumers)


def token_hash(token):
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def group_name(hashed):
    """The channel-layer group of one link's sockets, named by its hash so a socket joins before the lookup."""
    return f"share-{hashed}"


class ShareLinkQuerySet(models.QuerySet):
    def active(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))

    def of_runs(self, runs):
        """The links whose every run is in the queryset `runs`: the run's own, or a comparison of only those.
        (Who may list or revoke a link: accounts.access.visible gives `runs`.)"""
        outside = apps.get_model("runs", "Run").objects.exclude(pk__in=runs.values("pk"))
        return (self.filter(Q(run__in=runs) | Q(run__isnull=True, compared__in=runs))
                .exclude(compared__in=outside).distinct())


class ShareLink(models.Model):
    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name="share_links", null=True, blank=True,
                            help_text="The run shared; empty for a comparison (its runs: compared).")
    compared = models.ManyToManyField("runs.Run", through="ComparedRun", related_name="compared_share_links",
                                      blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="share_links")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: until revoked.")
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ShareLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        if self.run_id is None:
            return f"Share link #{self.pk} of a comparison"
        return f"Share link #{self.pk} of run #{self.run_id}"

    @property
    def is_comparison(self):
        return self.run_id is None

    def run_ids(self):
        """The ids it shows: the run's, or the comparison's in the compared order."""
        if self.run_id is not None:
            return [self.run_id]
        # Through .all(), so a list that prefetched "compared_runs" asks nothing more.
        return [c.run_id for c in sorted(self.compared_runs.all(), key=lambda c: c.position)]

    def subject(self):
        """What it shows, for a list: "run #3" or "comparison of runs #3, #5"."""
        ids = self.run_ids()
        if self.run_id is not None:
            return f"run #{self.run_id}"
        return "comparison of runs " + ", ".join(f"#{pk}" for pk in ids)

    @classmethod
    def create_for(cls, run, user, expires_at=None):
        """(link, token): the token is returned this once and never stored."""
        token = secrets.token_urlsafe(32)
        link = cls.objects.create(run=run, created_by=user, token_hash=token_hash(token), expires_at=expires_at)
        return link, token

    @classmethod
    def create_for_comparison(cls, runs, user, expires_at=None):
        """(link, token) for the comparison of `runs` (2 to 4, already checked the user's), in their order."""
        token = secrets.token_urlsafe(32)
        with transaction.atomic():
            link = cls.objects.create(created_by=user, token_hash=token_hash(token), expires_at=expires_at)
            ComparedRun.objects.bulk_create(ComparedRun(link=link, run=run, position=n) for n, run in enumerate(runs))
        return link, token

    @classmethod
    def find(cls, token):
        """The active link for `token`, or None: a revoked, expired, malformed or guessed token alike."""
        if not token or len(token) > 100:
            return None
        return cls.objects.active().filter(token_hash=token_hash(token)).first()

    @property
    def is_active(self):
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())

    @property
    def status(self):
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.is_active else "expired"

    def grant(self):
        return ShareGrant(link_id=self.pk, label="runs.run", pks=tuple(self.run_ids()))

    def touch(self):
        """Record a use, at most once a minute per link (a watched page polls and reconnects)."""
        now = timezone.now()
        if self.last_used_at is None or (now - self.last_used_at).total_seconds() > 60:
            ShareLink.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now

    def revoke(self):
        """Revoke the link and, once that is committed, close its open sockets."""
        with transaction.atomic():
            updated = ShareLink.objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
            self.refresh_from_db(fields=["revoked_at"])
            group = group_name(self.token_hash)
            transaction.on_commit(lambda: _close_sockets(group), robust=True)
        return bool(updated)

    def path(self, token):
        return reverse("sharing:run", args=[token])


class ComparedRun(models.Model):
    """One run of a shared comparison, at its place in the compared order. Deleting the run deletes this row;
    a comparison left with fewer than two runs answers 404 (sharing.views)."""

    link = models.ForeignKey(ShareLink, on_delete=models.CASCADE, related_name="compared_runs")
    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["link", "position"]
        constraints = [models.UniqueConstraint(fields=["link", "run"], name="compared_run_once")]


def _close_sockets(group):
    async_to_sync(get_channel_layer().group_send)(group, {"type": REVOKED})
