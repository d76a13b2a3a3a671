"""A user's quota: what staff set in the admin. Every empty field means "the default in settings.RUNWATCH", so
changing a default in the settings moves everyone who was not given a number of their own."""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from engine.spec import MIN_MEMORY_MB


class Quota(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota")
    running = models.PositiveIntegerField(
        "runs running at once", null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Runs past this wait, queued, until one of the user's runs ends.")
    queued = models.PositiveIntegerField(
        "runs queued", null=True, blank=True,
        help_text="Queued runs (waiting for a slot or for a worker) the user may have; launches past it are refused. "
                  "0 stops the user launching runs.")
    memory_mb = models.PositiveIntegerField(
        "largest memory limit (MB)", null=True, blank=True, validators=[MinValueValidator(MIN_MEMORY_MB)],
        help_text="The most a spec's limits.memory_mb may ask for; never above the server's ceiling.")
    time_seconds = models.PositiveIntegerField(
        "largest time limit (seconds)", null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="The most a spec's limits.time_seconds may ask for; never above the server's ceiling.")
    storage_mb = models.PositiveBigIntegerField(
        "storage (MB)", null=True, blank=True,
        help_text="Uploaded datasets and promoted models together.")

    class Meta:
        verbose_name = "quota"

    def __str__(self):
        return f"Quota of {self.user}"
