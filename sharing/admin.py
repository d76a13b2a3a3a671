"""Everyone's share links (of runs and of comparisons) for staff, each with its last use, and a Revoke action
that closes its sockets."""

from django.contrib import admin, messages

from .models import ShareLink


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    list_display = ("__str__", "shows", "created_by", "created", "expires_at", "last_used_at", "status")
    list_filter = (("created_by", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("run", "created_by")
    fields = ("shows", "created_by", "created", "expires_at", "last_used_at", "revoked_at")
    readonly_fields = ("shows", "created_by", "created", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("compared_runs")

    @admin.display(description="Shows")
    def shows(self, link):
        return link.subject()

    def has_add_permission(self, request):
        return False  # a link's token is shown once, to whoever makes it: make them on the run page or the API

    @admin.action(description="Revoke the selected share links")
    def revoke(self, request, queryset):
        revoked = sum(link.revoke() for link in queryset)
        self.message_user(request, f"Revoked {revoked} share link(s); their open pages were closed.",
                          messages.SUCCESS)
