"""Quotas are set on the user's own admin page: one inline under the user, empty fields meaning the defaults.
The inline shows what the user gets now (their numbers or the defaults), so staff need not look up settings."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.html import format_html_join

from .models import Quota
from .quotas import defaults, quota_for

User = get_user_model()

LABELS = (("running", "runs running at once"), ("queued", "runs queued"), ("memory_mb", "largest memory (MB)"),
          ("time_seconds", "largest time (s)"), ("storage_mb", "storage (MB)"))


class QuotaInline(admin.StackedInline):
    model = Quota
    can_delete = True  # deleting it gives the user the defaults again
    extra = 1
    max_num = 1
    fields = ("running", "queued", "memory_mb", "time_seconds", "storage_mb", "in_effect")
    readonly_fields = ("in_effect",)

    @admin.display(description="In effect (default)")
    def in_effect(self, quota):
        now = quota_for(quota.user_id) if quota.user_id else defaults()
        base = defaults()
        return format_html_join(", ", "{}: {} ({})",
                                ((label, getattr(now, name), getattr(base, name)) for name, label in LABELS))


admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    inlines = (*DjangoUserAdmin.inlines, QuotaInline)
