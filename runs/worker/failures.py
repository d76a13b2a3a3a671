"""What a user reads when a run fails: what failed, in which step, fold and variant, and what to do.

The traceback is for staff only (Run.traceback: the admin and the run page's "technical details"); nothing
here may reveal the server's file paths, so exception texts pass through `public_text` first.
"""

import re

from engine.steps import STEPS

# Where the run was when it failed matters only in the steps that fit models.
FITTING_STEPS = {"cross_validate", "train", "refit_best", "evaluate"}

HINTS = {
    "load_data": "Check that the dataset still exists and is a readable CSV file.",
    "load_bundle": "Check that the evaluated run's model still exists; re-run that run to export it again.",
    # The data is fixed; what changes is how the experiment reads it, which a re-run of the same spec cannot do.
    "validate_data": ("Clone and edit: the Preprocessing step fills missing values, encodes text and leaves "
                      "columns out; or fix the data and upload it again."),
    "cross_validate": "Try other parameter values or another estimator for this variant, then re-run.",
    "train": "Try other parameter values or another estimator for this variant, then re-run.",
    "refit_best": "Try other parameter values for the best variant, then re-run.",
    "evaluate": "Check that the data has the columns the model was trained on, then re-run.",
    "export": "Re-run it; if it fails again, ask an administrator.",
}
UNEXPECTED_HINT = "If re-running does not help, ask an administrator: the technical details are kept for them."

# An absolute path of two or more parts (/srv/app/media/x.csv, C:\\app\\x.csv): shown as its last part.
_PATH = re.compile(r"(?:[A-Za-z]:\\|/)(?:[\w.@+-]+[\\/])+([\w.@+-]+)")


def public_text(text):
    """`text` with absolute file paths cut down to their file name."""
    return _PATH.sub(lambda m: m.group(1), str(text))


def step_label(runner, step):
    return dict(STEPS.get(runner, [])).get(step, step.replace("_", " ").capitalize()) if step else ""


def where(runner, step, fold=None, variant=None, description="", branch=""):
    """ "Cross-validate (variant 3: Ridge alpha=1, fold 2)" or just the step label."""
    label = step_label(runner, step)
    if step not in FITTING_STEPS or not variant:
        return label
    parts = [f"variant {variant}" + (f": {description}" if description else "")]
    if branch and branch != "default":
        parts.append(f"branch {branch}")
    if fold and step == "cross_validate":
        parts.append(f"fold {fold}")
    return f"{label} ({', '.join(parts)})"


def readable(run, reason, step=None, hint=None):
    """The full message for the run page and JOB_FAILED, from the run's last reported position.

    `run` is a freshly read Run (its current_* fields are what the reporter last wrote)."""
    step = step or run.current_step
    place = where(run.runner, step, run.current_fold, run.current_variant, run.variant_description, run.current_branch)
    hint = hint or HINTS.get(step, UNEXPECTED_HINT)
    reason = public_text(reason).rstrip(".")
    return f"{place} failed: {reason}. {hint}" if place else f"The run failed: {reason}. {hint}"
