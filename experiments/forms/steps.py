"""The wizard's step forms for the data: which dataset, which target and task, which preprocessing.

Each step form reads its initial values from the draft's spec and writes its cleaned data back (`apply`).
The spec validator's errors come back as dotted paths; `add_spec_errors` puts each on the field that
caused it, or on the form when no field matches.
"""

from django import forms

from datasets import profiling
from datasets.models import Dataset

from engine import catalog
from .. import wizard


class StepForm(forms.Form):
    # validator path (or path prefix) -> field name
    paths = {}

    def __init__(self, *args, draft, user, **kwargs):
        self.draft, self.spec, self.user = draft, draft["spec"], user
        kwargs.setdefault("initial", self.initial_values())
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def initial_values(self):
        return {}

    def field_for(self, path):
        for prefix in sorted(self.paths, key=len, reverse=True):
            if path == prefix or path.startswith(prefix + "."):
                return self.paths[prefix]
        return None

    def add_spec_errors(self, errors):
        for path, messages in errors.items():
            field = self.field_for(path)
            for message in messages:
                self.add_error(field if field in self.fields else None, message)

    def apply(self):
        raise NotImplementedError


class DatasetStep(StepForm):
    source = forms.ChoiceField(label="Data", widget=forms.RadioSelect)
    n_samples = forms.IntegerField(label="Rows", initial=1000, required=False)
    n_features = forms.IntegerField(label="Features", initial=20, required=False)
    noise = forms.FloatField(label="Noise", initial=0.1, required=False)
    n_classes = forms.IntegerField(label="Classes (classification)", initial=2, required=False)
    data_seed = forms.IntegerField(label="Seed", initial=0, required=False)
    paths = {"dataset": "source", "dataset.n_samples": "n_samples", "dataset.n_features": "n_features",
             "dataset.noise": "noise", "dataset.n_classes": "n_classes", "dataset.seed": "data_seed"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        uploads = [(f"csv:{d.pk}", f"{d.name} ({d.n_rows:,} rows × {d.n_columns} columns)")
                   for d in Dataset.objects.filter(owner=self.user, kind=Dataset.Kind.CSV)]
        builtins = [(f"builtin:{n}", f"{n} ({catalog.BUILTIN_SHAPES[n][0]} rows, {t})")
                    for n, (t, _) in catalog.BUILTIN_DATASETS.items()]
        synthetic = [(f"synthetic:{n}", f"Synthetic {n}") for n in catalog.SYNTHETIC_GENERATORS]
        self.fields["source"].choices = [c for c in (("Your uploads", uploads), ("Built-in", builtins),
                                                     ("Synthetic", synthetic)) if c[1]]

    def initial_values(self):
        ref = self.spec.get("dataset") or {}
        key = {"csv": ref.get("id"), "builtin": ref.get("name"), "synthetic": ref.get("generator")}.get(ref.get("kind"))
        initial = {"source": f"{ref.get('kind')}:{key}"}
        if ref.get("kind") == "synthetic":
            initial.update({k: ref.get(k) for k in ("n_samples", "n_features", "noise", "n_classes")})
            initial["data_seed"] = ref.get("seed")
        return initial

    def apply(self):
        kind, _, key = self.cleaned_data["source"].partition(":")
        if kind == "csv":
            ref = {"kind": "csv", "id": int(key)}
            task = self.spec.get("task")
        elif kind == "builtin":
            ref, task = {"kind": "builtin", "name": key}, catalog.BUILTIN_DATASETS[key][0]
        else:
            ref, task = {"kind": "synthetic", "generator": key}, catalog.SYNTHETIC_GENERATORS[key][0]
            for field, name in (("n_samples", "n_samples"), ("n_features", "n_features"), ("noise", "noise"),
                                ("n_classes", "n_classes"), ("data_seed", "seed")):
                value = self.cleaned_data.get(field)
                if value is not None and (name != "n_classes" or key == "classification"):
                    ref[name] = value
        if ref != self.spec.get("dataset"):
            self.spec["dataset"] = ref
            self.spec.pop("drop_columns", None)  # columns of the data chosen before
            if kind != "csv":
                self.spec["target"] = "target"
            self.spec["task"] = task
            self.spec["metric"] = None  # the task may have changed; the validator picks its default
            if kind == "csv":
                wizard.from_profile(self.draft, Dataset.objects.get(owner=self.user, pk=ref["id"]))  # owner's only


class TargetStep(StepForm):
    target = forms.ChoiceField(label="Target column", required=False)
    task = forms.ChoiceField(label="Task", widget=forms.RadioSelect,
                             choices=[("classification", "Classification"), ("regression", "Regression")])
    paths = {"target": "target", "task": "task"}

    def __init__(self, *args, dataset=None, **kwargs):
        self.dataset = dataset
        super().__init__(*args, **kwargs)
        if dataset is not None:
            self.fields["target"].required = True
            self.fields["target"].choices = [("", "Choose a column…")] + [
                (c["name"], f"{c['name']} ({c.get('kind', c.get('dtype'))})") for c in dataset.columns]
        else:
            del self.fields["target"]

    def initial_values(self):
        return {"target": self.spec.get("target"), "task": self.spec.get("task")}

    def clean(self):
        data = super().clean()
        if self.dataset is None or not data.get("target") or not data.get("task"):
            return data
        column = next(c for c in self.dataset.columns if c["name"] == data["target"])
        if "kind" in column:  # datasets uploaded before profiling have no column facts to judge by
            folds = (self.spec.get("cv") or {}).get("folds")
            problem = profiling.target_problem(column, data["task"], folds, self.dataset.n_rows)
            if problem:
                self.add_error("target", problem)
        return data

    def apply(self):
        if self.dataset is not None and self.cleaned_data["target"] != self.spec.get("target"):
            self.spec["target"] = self.cleaned_data["target"]
            # Which columns are features changed: propose their preprocessing again.
            wizard.profile_preprocessing(self.spec, self.dataset.columns)
        if self.cleaned_data["task"] != self.spec.get("task"):
            self.spec["task"] = self.cleaned_data["task"]
            self.spec["metric"] = None
            self.spec["models"] = []  # estimators are per task


SCALER_CHOICES = [("", "No scaling"), ("standard_scaler", "Standard (mean 0, variance 1)"),
                  ("minmax_scaler", "Min-max (0 to 1)"), ("robust_scaler", "Robust (median and quartiles)")]


class PreprocessingStep(StepForm):
    imputer = forms.ChoiceField(label="Fill missing numbers with", required=False, choices=[
        ("", "Nothing (rows must be complete)"), ("mean", "Column mean"), ("median", "Column median"),
        ("most_frequent", "Most frequent value")])
    cat_imputer = forms.ChoiceField(label="Fill missing categories with", required=False, choices=[
        ("", "Nothing (a missing value is a category of its own)"), ("most_frequent", "Most frequent value"),
        ("constant", "A category named “missing_value”")],
        help_text="Used with one-hot encoding.")
    encode = forms.ChoiceField(label="Text and categorical columns", widget=forms.RadioSelect, initial="encode",
                               choices=[("encode", "One-hot encode them"),
                                        ("drop", "Leave text columns out (numeric columns only)"),
                                        ("none", "None in my data (no encoding step)")])
    drop_columns = forms.MultipleChoiceField(label="Leave out these columns", required=False,
                                             widget=forms.CheckboxSelectMultiple)
    n_branches = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=20)

    def __init__(self, *args, dataset=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.dataset = dataset
        if dataset is not None:
            self.fields["drop_columns"].choices = [
                (c["name"], c["name"] + "".join(f" — {note}" for note in profiling.flag_notes(c)))
                for c in dataset.columns if c["name"] != self.spec.get("target")]
            self.proposed = [c for c in dataset.columns if c.get("flags") and c["name"] != self.spec.get("target")]
        else:
            del self.fields["drop_columns"]
            self.proposed = []
        count = self.initial.get("n_branches", 1)
        if self.is_bound:
            try:
                count = min(max(int(self.data.get("n_branches", count)), 1), 20)
            except ValueError:
                count = 1
        self.n = count
        for i in range(count):
            self.fields[f"b{i}_name"] = forms.CharField(label="Branch name", required=False, max_length=100)
            self.fields[f"b{i}_scaler"] = forms.ChoiceField(label="Scaling", required=False, choices=SCALER_CHOICES)
            self.fields[f"b{i}_degree"] = forms.IntegerField(label="Polynomial degree", required=False)
            self.fields[f"b{i}_pca"] = forms.FloatField(label="PCA components", required=False)
            self.fields[f"b{i}_k"] = forms.IntegerField(label="Keep k best features", required=False)

    def branch_rows(self):
        return [[self[f"b{i}_{f}"] for f in ("name", "scaler", "degree", "pca", "k")] for i in range(self.n)]

    def initial_values(self):
        strategy, encode, branches, categorical = wizard.split_preprocessing(self.spec)
        initial = {"imputer": strategy, "cat_imputer": categorical, "encode": encode or "none",
                   "n_branches": max(len(branches), 1), "drop_columns": self.spec.get("drop_columns") or []}
        for i, b in enumerate(branches):
            for key in ("name", "scaler", "degree", "pca", "k"):
                initial[f"b{i}_{key}"] = b[key]
        return initial

    def add_spec_errors(self, errors):
        fields = {"degree": "degree", "n_components": "pca", "k": "k", "name": "name"}
        for path, messages in errors.items():
            parts = path.split(".")
            field = None
            if parts[0] == "branches" and len(parts) > 2:
                field = f"b{parts[1]}_{fields.get(parts[-1], 'scaler')}"
            elif parts[0] == "preprocessing" and parts[-1] in fields:
                field = f"b0_{fields[parts[-1]]}"
            elif parts[0] == "drop_columns":
                field = "drop_columns"
            for message in messages:
                self.add_error(field if field in self.fields else None, message)

    def branches(self):
        rows = []
        for i in range(self.n):
            row = {k: self.cleaned_data.get(f"b{i}_{k}") for k in ("name", "scaler", "degree", "pca", "k")}
            if row["pca"] is not None and float(row["pca"]).is_integer():
                row["pca"] = int(row["pca"])
            if any(v not in (None, "") for v in row.values()):
                rows.append(row)
        return rows

    def apply(self):
        encode = self.cleaned_data["encode"] if self.cleaned_data["encode"] != "none" else ""
        self.spec["preprocessing"], self.spec["branches"] = wizard.join_preprocessing(
            self.cleaned_data["imputer"], encode, self.branches(), self.cleaned_data["cat_imputer"])
        if self.dataset is not None:
            if self.cleaned_data["drop_columns"]:
                self.spec["drop_columns"] = self.cleaned_data["drop_columns"]
            else:
                self.spec.pop("drop_columns", None)
