"""The admin for runs and everything recorded about them.

A run changes state only through its model methods and runs.control, so the admin never edits one: the
change page is view-only, and the actions call the same cancel_run, rerun and resume as the pages and the API.
Steps, fold metrics, logs and events are records of what happened and are read-only everywhere.
"""

import json

from django.contrib import admin, messages
from django.contrib.admin.utils import model_ngettext
from django.forms.models import BaseInlineFormSet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import capfirst
from django_rq.settings import get_queues_map

from accounts.quotas import QuotaExceeded
from engine.spec import SpecError

from . import control, formatting
from .worker import scheduling
from . import resume as resuming
from .models import FoldDiagnostic, FoldMetric, LogEntry, Run, RunEvent, RunStep

# Rows shown inline on a run's page, collapsed: one 30-fit run's page was 10,571 px tall with 200 of each. A
# run can hold 100,000 log lines; the rest are one link away, in the paginated changelist filtered to the run.
INLINE_LIMIT = 10


def pretty_json(value):
    return format_html('<pre style="margin:0;white-space:pre-wrap">{}</pre>', json.dumps(value, indent=2))


def status_badge(run):
    """The pages' badge (templates/includes/status_badge.html); its colours come from static/css/status.css,
    which templates/admin/base_site.html loads into every admin page."""
    return render_to_string("includes/status_badge.html", {"run": run})


def changelist_link(model, run, label):
    url = reverse(f"admin:runs_{model._meta.model_name}_changelist") + f"?run__id__exact={run.pk}"
    return format_html('<a href="{}">{}</a>', url, label)


class ReadOnlyMixin:
    """Records of what a run did: nobody adds, edits or deletes them by hand (deleting events would punch
    holes in the sequence clients resume from). They go when their run is deleted."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LatestFirstFormSet(BaseInlineFormSet):
    """An inline formset holding only the newest `limit` rows, so a page never renders a whole log."""

    limit = INLINE_LIMIT
    newest_first = ("-seq", "-id")

    def rest_link(self):
        """"Newest 10 of 30 shown · all 30 fold metrics", linking the changelist filtered to the run."""
        total = self.model.objects.filter(run=self.instance).count()
        label = f"all {total:,} {self.model._meta.verbose_name_plural}"
        return format_html("Newest {} of {} shown · {}", min(total, self.limit), f"{total:,}",
                           changelist_link(self.model, self.instance, label))

    def get_queryset(self):
        if not hasattr(self, "_latest"):
            # A list, not a sliced queryset: the formset indexes into it once per row.
            self._latest = list(super().get_queryset().order_by(*self.newest_first)[: self.limit])
        return self._latest


class RunStepInline(ReadOnlyMixin, admin.TabularInline):
    model = RunStep
    fields = ("order", "name", "label", "status", "started_at", "finished_at", "detail")
    extra = 0


class FoldMetricInline(ReadOnlyMixin, admin.TabularInline):
    model = FoldMetric
    formset = LatestFirstFormSet
    fields = ("branch", "variant", "variant_description", "fold", "epoch", "metric", "value", "fit_time")
    extra = 0
    classes = ("collapse",)
    template = "admin/runs/latest_inline.html"  # the tabular inline, then the link to the rest
    verbose_name_plural = f"fold metrics (latest {INLINE_LIMIT})"


class LogEntryInline(ReadOnlyMixin, admin.TabularInline):
    model = LogEntry
    formset = LatestFirstFormSet
    fields = ("seq", "created", "level", "message", "step", "branch", "variant", "fold")
    extra = 0
    classes = ("collapse",)
    template = "admin/runs/latest_inline.html"  # the tabular inline, then the link to the rest
    verbose_name_plural = f"log entries (latest {INLINE_LIMIT})"


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("__str__", "status_badge", "progress_percent", "duration", "owner", "experiment", "queued_at")
    list_filter = ("status", ("owner", admin.RelatedOnlyFieldListFilter), "runner")
    search_fields = ("name", "experiment__name")
    list_select_related = ("owner", "experiment")
    list_per_page = 50
    actions = ("cancel_selected", "rerun_selected", "resume_selected")
    inlines = (RunStepInline, FoldMetricInline, LogEntryInline)
    readonly_fields = (
        "status_badge",
        "progress_percent",
        "duration",
        "records",
        "spec_json",
        "summary_json",
        "best_variant_json",
        "library_versions_json",
        "warnings_json",
        "rq_job",
    )
    fieldsets = (
        (None, {"fields": ("name", "status_badge", "owner", "experiment", "rerun_of", "resumed_from", "reused_fits", "runner", "records")}),
        (
            "Progress",
            {
                "fields": (
                    "progress_percent",
                    "message",
                    ("current_step", "current_branch"),
                    ("current_variant", "total_variants", "variant_description"),
                    ("current_fold", "total_folds"),
                    ("finished_fits", "total_fits", "eta_seconds", "eta_low", "eta_high"),
                    ("early_stopped", "stopped_epoch", "latest_score"),
                    "warnings_json",
                )
            },
        ),
        (
            "Times",
            {
                "fields": (
                    ("queued_at", "started_at", "finished_at", "duration"),
                    ("heartbeat_at", "cancel_requested_at", "kill_sent_at"),
                )
            },
        ),
        (
            "Result",
            {
                "fields": (
                    ("best_score", "partial"),
                    "best_variant_json",
                    "summary_json",
                    ("model_file", "model_sha256"),
                    "error_message",
                    "traceback",
                )
            },
        ),
        ("Worker", {"fields": ("rq_job", "worker_name", "last_seq")}),
        ("Reproducibility", {"fields": ("seed", "data_hash", "library_versions_json")}),
        ("Spec snapshot", {"fields": ("spec_json",)}),
    )

    # A run's state moves only through Run.transition (via runs.control); the change page is view-only.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_cancel_permission(self, request):
        return request.user.has_perm("runs.change_run")

    def has_rerun_permission(self, request):
        return request.user.has_perm("runs.add_run")

    @admin.display(description="Status", ordering="status")
    def status_badge(self, run):
        return status_badge(run)

    @admin.display(description="Progress", ordering="progress")
    def progress_percent(self, run):
        return f"{run.percent:g}%"

    @admin.display(description="Duration")
    def duration(self, run):
        return formatting.duration(run.duration)

    @admin.display(description="Records")
    def records(self, run):
        # Two index-only counts; one aggregate over both relations would join them into a product.
        logs = LogEntry.objects.filter(run=run).count()
        metrics = FoldMetric.objects.filter(run=run).count()
        return format_html(
            "{} · {} · {}",
            changelist_link(LogEntry, run, f"All {logs:,} log lines"),
            changelist_link(FoldMetric, run, f"all {metrics:,} fold metrics"),
            changelist_link(RunEvent, run, f"all {run.last_seq:,} events"),
        )

    @admin.display(description="Spec")
    def spec_json(self, run):
        return pretty_json(run.spec)

    @admin.display(description="Summary")
    def summary_json(self, run):
        return pretty_json(run.summary)

    @admin.display(description="Best variant")
    def best_variant_json(self, run):
        return pretty_json(run.best_variant)

    @admin.display(description="Library versions")
    def library_versions_json(self, run):
        return pretty_json(run.library_versions)

    @admin.display(description="Warnings")
    def warnings_json(self, run):
        return pretty_json(run.warnings)

    @admin.display(description="RQ job")
    def rq_job(self, run):
        if not run.rq_job_id:
            return "—"
        queue_index = get_queues_map()[scheduling.get_queue().name]
        url = reverse("django_rq:job_detail", args=[queue_index, run.rq_job_id])
        return format_html('<a href="{}">{}</a>', url, run.rq_job_id)

    def get_deleted_objects(self, objs, request):
        """Summarise instead of listing every row: a run's 100,000 log lines would make the confirmation
        page unusable, and the default check would refuse because nobody may delete log rows on their own.
        Active runs are protected: a worker is still writing to them, so cancel them first."""
        runs = list(objs)
        protected = [f"{run} is {run.get_status_display().lower()}; cancel it first" for run in runs if run.is_active]
        ids = [run.pk for run in runs]
        model_count = {Run._meta.verbose_name_plural: len(runs)}
        for model in (RunStep, FoldMetric, FoldDiagnostic, LogEntry, RunEvent):
            model_count[model._meta.verbose_name_plural] = model.objects.filter(run_id__in=ids).count()
        to_delete = [format_html("{}: {}", capfirst(Run._meta.verbose_name), run) for run in runs]
        return to_delete, model_count, set(), protected

    @admin.action(description="Cancel selected runs", permissions=["cancel"])
    def cancel_selected(self, request, queryset):
        # Report what actually happened to each run; a run that could not be stopped is never counted.
        stopped, cancelling, already, refused = [], [], [], []
        for run in queryset:
            before = run.status
            try:
                run = control.cancel_run(run, by=request.user)
            except control.CannotCancel as e:
                refused.append(f"{run}: {e}")
                continue
            if run.status == Run.Status.STOPPED and before != Run.Status.STOPPED:
                stopped.append(run)
            elif run.status == Run.Status.CANCELLING and before != Run.Status.CANCELLING:
                cancelling.append(run)
            else:
                already.append(run)
        if stopped:
            self.message_user(
                request,
                f"Stopped {len(stopped)} queued {model_ngettext(self.opts, len(stopped))}; they will not start.",
                messages.SUCCESS,
            )
        if cancelling:
            self.message_user(
                request,
                f"Asked {len(cancelling)} running {model_ngettext(self.opts, len(cancelling))} to stop after "
                "the current fit.",
                messages.SUCCESS,
            )
        if already:
            names = ", ".join(str(run) for run in already)
            self.message_user(request, f"Already stopping or stopped, nothing to do: {names}.", messages.INFO)
        if refused:
            # Nothing cancelled at all is an error; a partial success is a warning about the rest.
            level = messages.WARNING if stopped or cancelling else messages.ERROR
            self.message_user(request, "Not cancelled: " + " ".join(refused), level)

    @admin.action(description="Re-run", permissions=["rerun"])
    def rerun_selected(self, request, queryset):
        launched, failed = [], []
        for run in queryset.select_related("owner", "experiment"):
            try:
                launched.append(control.rerun(run))
            except (SpecError, QuotaExceeded) as e:
                # The snapshot may name a dataset or model that has since been deleted; the owner may be at quota.
                failed.append(f"{run}: {e}")
        if launched:
            names = ", ".join(str(run) for run in launched)
            self.message_user(
                request,
                f"Launched {len(launched)} new {model_ngettext(self.opts, len(launched))}: {names}.",
                messages.SUCCESS,
            )
        if failed:
            level = messages.WARNING if launched else messages.ERROR
            self.message_user(request, "Could not re-run: " + " ".join(failed), level)

    @admin.action(description="Resume (reuse the finished folds)", permissions=["rerun"])
    def resume_selected(self, request, queryset):
        launched, refused = [], []
        for run in queryset.select_related("owner", "experiment"):
            try:
                launched.append(resuming.resume(run))
            except (resuming.CannotResume, SpecError, QuotaExceeded) as e:
                refused.append(f"{run}: {e}")
        if launched:
            names = ", ".join(f"{run} ({run.reused_fits} fits reused)" for run in launched)
            self.message_user(request, f"Resumed as {names}.", messages.SUCCESS)
        if refused:
            level = messages.WARNING if launched else messages.ERROR
            self.message_user(request, "Not resumed: " + " ".join(refused), level)


class RunRecordAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Shared by the per-run record tables, which can hold millions of rows: no full-table counts, the run
    shown by id rather than as a select of every run, and the run loaded in the same query."""

    raw_id_fields = ("run",)
    list_select_related = ("run",)
    show_full_result_count = False
    list_per_page = 100


@admin.register(RunStep)
class RunStepAdmin(RunRecordAdmin):
    list_display = ("run", "order", "name", "status", "started_at", "finished_at")
    list_filter = ("status", "name")
    search_fields = ("run__name",)


@admin.register(FoldMetric)
class FoldMetricAdmin(RunRecordAdmin):
    list_display = ("run", "branch", "variant", "fold", "epoch", "metric", "value", "fit_time")
    list_filter = ("metric",)
    search_fields = ("run__name", "variant_description")


@admin.register(LogEntry)
class LogEntryAdmin(RunRecordAdmin):
    list_display = ("run", "seq", "created", "level", "short_message", "step", "branch", "variant", "fold")
    list_filter = ("level",)
    search_fields = ("message",)

    @admin.display(description="Message")
    def short_message(self, entry):
        return entry.message if len(entry.message) <= 160 else entry.message[:159] + "…"


@admin.register(RunEvent)
class RunEventAdmin(RunRecordAdmin):
    list_display = ("run", "seq", "type", "created")
    list_filter = ("type",)
    readonly_fields = ("data_json",)
    fields = ("run", "seq", "type", "created", "data_json")

    @admin.display(description="Data")
    def data_json(self, event):
        return pretty_json(event.data)
