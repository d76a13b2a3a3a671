"""The admin for experiments and promoted models (datasets: datasets.admin).

An experiment's spec is checked by engine.spec.validate_spec (through Experiment.clean), the one
validator the wizard, the API and the CLI use too; its errors appear under the spec field, one line per
offending field path ("models.0.params.C: ...").
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import model_ngettext
from django.db import models
from django.urls import reverse
from django.utils.html import format_html

from accounts.quotas import QuotaExceeded
from datasets.admin import PrettyJSONField
from runs import control

from .models import Experiment, RegisteredModel
from engine.spec import SpecError


class ExperimentAdminForm(forms.ModelForm):
    class Meta:
        model = Experiment
        fields = ("owner", "name", "description", "spec")
        field_classes = {"spec": PrettyJSONField}

    # Validation is Experiment.clean(), which runs validate_spec with the chosen owner (a CSV dataset or an
    # evaluated run must be theirs) and keeps the normalised spec; ModelForm calls it for us.


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    form = ExperimentAdminForm
    list_display = ("name", "owner", "runner", "dataset", "run_count", "updated")
    list_filter = (("owner", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("name", "description")
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)
    readonly_fields = ("runs_link", "created", "updated")
    fields = ("owner", "name", "description", "spec", "runs_link", "created", "updated")
    actions = ("launch_selected",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(run_total=models.Count("runs"))

    @admin.display(description="Dataset")
    def dataset(self, experiment):
        ref = (experiment.spec or {}).get("dataset") or {}
        return ref.get("name") or ref.get("generator") or (f"CSV #{ref['id']}" if "id" in ref else "—")

    @admin.display(description="Runs", ordering="run_total")
    def run_count(self, experiment):
        return experiment.run_total

    @admin.display(description="Runs")
    def runs_link(self, experiment):
        if not experiment.pk:
            return "—"
        url = reverse("admin:runs_run_changelist") + f"?experiment__id__exact={experiment.pk}"
        return format_html('<a href="{}">{} runs of this experiment</a>', url, experiment.runs.count())

    @admin.action(description="Launch a run of each selected experiment", permissions=["launch"])
    def launch_selected(self, request, queryset):
        launched, failed = [], []
        for experiment in queryset.select_related("owner"):
            try:
                launched.append(control.launch_run(experiment.owner, experiment=experiment))
            except (SpecError, QuotaExceeded) as e:
                failed.append(f"{experiment}: {e}")
        if launched:
            noun = model_ngettext(launched[0]._meta, len(launched))
            self.message_user(request, f"Launched {len(launched)} {noun}.", messages.SUCCESS)
        if failed:
            level = messages.WARNING if launched else messages.ERROR
            self.message_user(request, "Not launched: " + " ".join(failed), level)

    def has_launch_permission(self, request):
        return request.user.has_perm("runs.add_run")


@admin.register(RegisteredModel)
class RegisteredModelAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "run", "metric", "score", "size_bytes", "created")
    search_fields = ("name", "run__name")
    list_filter = (("owner", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("owner", "run")
    raw_id_fields = ("run",)
    autocomplete_fields = ("owner",)
    # The file and its checksum are written when the run's model is promoted; editing them would break
    # the promise that the checksum matches the file.
    readonly_fields = ("file", "sha256", "size_bytes", "created")
