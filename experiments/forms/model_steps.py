"""The wizard's step forms for the work: models and their grids, validation and metrics, runner, review."""

from django import forms

from engine import catalog

from .. import wizard
from .steps import StepForm


class ModelsStep(StepForm):
    """One checkbox per estimator of the task, and one text field per parameter: a list or a range."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        task = self.spec.get("task") or "classification"
        self.estimators = wizard.estimators_for(task)
        self.groups = []
        for name in self.estimators:
            installed = wizard.library_installed(name)
            use = forms.BooleanField(label=name + ("" if installed else " (install required)"), required=False,
                                     disabled=not installed)
            self.fields[f"use_{name}"] = use
            params = []
            for param, kind, hint, default in wizard.estimator_params(name):
                field = forms.CharField(label=param, required=False, max_length=2000,
                                        help_text=f"{hint}; default {wizard.show_values([default])}")
                self.fields[f"{name}__{param}"] = field
                params.append(f"{name}__{param}")
            self.groups.append({"name": name, "installed": installed, "use": f"use_{name}", "params": params})

    def bound_groups(self):
        return [{**g, "use": self[g["use"]], "params": [self[p] for p in g["params"]],
                 "open": bool(self[g["use"]].value())} for g in self.groups]

    def initial_values(self):
        if not self.spec.get("models") and self.spec.get("runner", "cv") != "evaluation":
            # A first model ticked, so a draft can go from the first step to launch with every default.
            return {f"use_{wizard.DEFAULT_MODELS[self.spec.get('task') or 'classification']}": True}
        initial = {}
        for model in self.spec.get("models") or []:
            name = model.get("estimator") if isinstance(model, dict) else model
            initial[f"use_{name}"] = True
            for param, values in ((model.get("params") or {}) if isinstance(model, dict) else {}).items():
                initial[f"{name}__{param}"] = wizard.show_values(values if isinstance(values, list) else [values])
        return initial

    def clean(self):
        data = super().clean()
        self.models = []
        for group in self.groups:
            if not data.get(group["use"]):
                continue
            grid = {}
            for field in group["params"]:
                try:
                    values = wizard.parse_values(data.get(field))
                except ValueError as e:
                    self.add_error(field, str(e))
                    continue
                if values:
                    grid[field.split("__", 1)[1]] = values
            self.models.append({"estimator": group["name"], "params": grid})
        if not self.models and self.spec.get("runner") != "evaluation":  # evaluation brings its own model
            raise forms.ValidationError("Choose at least one model.")
        return data

    def field_for(self, path):
        parts = path.split(".")
        chosen = [m.get("estimator") if isinstance(m, dict) else m for m in self.spec.get("models") or []]
        if len(parts) >= 3 and parts[1].isdigit() and int(parts[1]) < len(chosen):
            name = chosen[int(parts[1])]
            if parts[2] == "params" and len(parts) >= 4:
                return f"{name}__{parts[3]}"
            return f"use_{name}"
        return None

    def apply(self):
        self.spec["models"] = self.models


class CVStep(StepForm):
    kind = forms.ChoiceField(label="Splitter", choices=[
        ("stratified_kfold", "Stratified k-fold (keeps class proportions)"), ("kfold", "K-fold"),
        ("shuffle_split", "Shuffle split")])
    folds = forms.IntegerField(label="Folds", min_value=2, max_value=50)
    shuffle = forms.BooleanField(label="Shuffle rows before splitting", required=False)
    seed = forms.IntegerField(label="Seed", min_value=0, required=False)
    metric = forms.ChoiceField(label="Primary metric")
    # The optional stop rule (engine/runners/stop_rules.py): its kind, and the one setting each kind has. The values go to
    # the spec as typed; the spec validator judges them (against the folds and the metric) like any other field.
    stop_rule = forms.ChoiceField(label="Stop rule", required=False, choices=[
        ("", "None: every variant gets every fold"),
        ("median", "Median: prune a variant below the median of the others"),
        ("successive_halving", "Successive halving: the best 1/factor get more folds"),
        ("target", "Target: end the run once a variant reaches a score")])
    stop_after_folds = forms.IntegerField(label="Median: judge from fold", required=False,
                                          help_text="A variant is compared after at least this many folds.")
    stop_factor = forms.IntegerField(label="Halving factor", required=False, help_text="2 keeps the best half.")
    stop_value = forms.FloatField(label="Target score", required=False,
                                  help_text="Of the primary metric, as a variant's mean over every fold.")
    paths = {"cv.kind": "kind", "cv.folds": "folds", "cv.shuffle": "shuffle", "cv.seed": "seed", "metric": "metric",
             "stop_rule": "stop_rule", "stop_rule.after_folds": "stop_after_folds", "stop_rule.factor": "stop_factor",
             "stop_rule.value": "stop_value"}
    STOP_SETTINGS = {"median": ("after_folds", "stop_after_folds", 2), "successive_halving": ("factor", "stop_factor", 3),
                     "target": ("value", "stop_value", None)}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        task = self.spec.get("task") or "classification"
        self.fields["metric"].choices = [
            (m, f"{catalog.METRIC_LABELS[m]} ({'higher' if catalog.greater_is_better(task, m) else 'lower'} is better)")
            for m in catalog.METRICS[task]]
        if task == "regression":
            self.fields["kind"].choices = self.fields["kind"].choices[1:]
        self.recorded = [catalog.METRIC_LABELS[m] for m in catalog.METRICS[task]]

    def initial_values(self):
        cv, task = self.spec.get("cv") or {}, self.spec.get("task")
        return {"kind": cv.get("kind") or ("stratified_kfold" if task == "classification" else "kfold"),
                "folds": cv.get("folds", 5), "shuffle": cv.get("shuffle", True), "seed": cv.get("seed", 42),
                "metric": self.spec.get("metric"), **self._stop_initial()}

    def _stop_initial(self):
        rule = self.spec.get("stop_rule") if isinstance(self.spec.get("stop_rule"), dict) else {}
        values = {"stop_rule": rule.get("kind", ""), "stop_after_folds": 2, "stop_factor": 3, "stop_value": None}
        if rule.get("kind") in self.STOP_SETTINGS:
            key, field, _ = self.STOP_SETTINGS[rule["kind"]]
            values[field] = rule.get(key)
        return values

    def apply(self):
        d = self.cleaned_data
        self.spec["cv"] = {"kind": d["kind"], "folds": d["folds"], "shuffle": d["shuffle"],
                           "seed": d["seed"] if d["seed"] is not None else 42}
        self.spec["metric"] = d["metric"]
        kind = d.get("stop_rule")
        if not kind:
            self.spec.pop("stop_rule", None)
            return
        key, field, default = self.STOP_SETTINGS[kind]
        value = d.get(field) if d.get(field) is not None else default
        self.spec["stop_rule"] = {"kind": kind} if value is None else {"kind": kind, key: value}


class RunnerStep(StepForm):
    runner = forms.ChoiceField(label="How to run", widget=forms.RadioSelect, choices=[
        ("cv", "Cross-validation: score every variant on every fold, then refit the best"),
        ("training", "Epoch training: train incrementally with early stopping (partial_fit models)"),
        ("evaluation", "Evaluate a finished run's model on this data")])
    epochs = forms.IntegerField(label="Epochs", required=False, initial=30)
    patience = forms.IntegerField(label="Patience (epochs without improvement)", required=False, initial=5)
    validation_fraction = forms.FloatField(label="Validation fraction", required=False, initial=0.2)
    run = forms.TypedChoiceField(label="Model of run", required=False, coerce=int, empty_value=None)
    paths = {"runner": "runner", "training.epochs": "epochs", "training.patience": "patience",
             "training.validation_fraction": "validation_fraction", "evaluation": "run"}

    def __init__(self, *args, **kwargs):
        from django.apps import apps

        super().__init__(*args, **kwargs)
        run_model = apps.get_model("runs", "Run")  # runs depends on experiments; no import at module level
        finished = (run_model.objects.filter(owner=self.user, status=run_model.Status.COMPLETED)
                    .exclude(model_file="").order_by("-id")[:50])
        self.fields["run"].choices = [("", "Choose a run…")] + [(r.pk, f"#{r.pk} {r.name}") for r in finished]

    def initial_values(self):
        t = self.spec.get("training") or {}
        return {"runner": self.spec.get("runner", "cv"), "epochs": t.get("epochs", 30),
                "patience": t.get("patience", 5), "validation_fraction": t.get("validation_fraction", 0.2),
                "run": (self.spec.get("evaluation") or {}).get("run")}

    def apply(self):
        d = self.cleaned_data
        self.spec["runner"] = d["runner"]
        self.spec.pop("training", None)
        self.spec.pop("evaluation", None)
        if d["runner"] == "training":
            self.spec["training"] = {k: d[k] for k in ("epochs", "patience", "validation_fraction")
                                     if d[k] is not None}
        elif d["runner"] == "evaluation":
            self.spec["evaluation"] = {"run": d["run"]}


class ReviewStep(StepForm):
    name = forms.CharField(label="Experiment name", max_length=200)
    description = forms.CharField(label="Description (optional)", required=False, widget=forms.Textarea(
        attrs={"rows": 2}))

    def initial_values(self):
        return {"name": self.draft.get("name"), "description": self.draft.get("description")}

    def apply(self):
        self.draft["name"] = self.cleaned_data["name"]
        self.draft["description"] = self.cleaned_data["description"]
