"""What would fail a run's "Validate data" step, found before launch and said in the wizard's words.

The rules are the engine's (engine.datasets.problems, the same ones the run applies); this module reads the
uploaded file once, asks for every problem at once, and turns each into the step and field of the wizard
that fixes it, so the Review step can list them all rather than the run failing on the first.
"""

from datasets import profiling
from datasets.storage import read_stored_csv

from engine.spec import branches, variants

ENCODE = "under “Text and categorical columns” choose “One-hot encode them” or “Leave text columns out”"
FILL = "choose how to “Fill missing numbers with”"


def data_problems(spec, dataset):
    """{pseudo-path: [message]} for an uploaded dataset and a spec the validator accepted; the first part of
    each path is the wizard step that fixes it ("preprocessing.text.Name")."""
    # Here, not at the top: the engine's data modules load pandas and scikit-learn, which the web processes
    # load only when a page needs them (tests/test_light_setup.py).
    from engine import datasets, pipeline

    frame, problem = read_stored_csv(dataset.file)
    data = datasets.Data(dataset.name, dataset.sha256, spec["target"], frame=frame, problem=problem)
    runner = spec.get("runner", "cv")
    chains = None if runner == "evaluation" else [(name, [s["name"] for s in steps]) for name, steps in branches(spec)]
    nan_ok = runner != "evaluation" and all(pipeline.allows_nan(v) for v in variants(spec))
    found, _ = datasets.problems(data, spec, chains, allow_nan=nan_ok)
    columns = {c["name"]: c for c in dataset.profiled_columns(frame)}
    out = {}
    for error in found:
        step, message = _in_wizard_words(error, columns.get(error.column) or {})
        out.setdefault(f"{step}.{error.code}.{error.column or ''}", []).append(message)
    return out


def _in_wizard_words(error, column):
    name = f"“{error.column}”"
    flagged = profiling.flag_notes(column) if column else []
    leave_out = (f" The profile flags it ({'; '.join(flagged)}): leaving it out is likely best." if flagged
                 else "")
    if error.code == "text":
        top = ((column.get("stats") or {}).get("top") or [[None]])[0][0]
        example = f" (for example “{top}”)" if top is not None else ""
        return "preprocessing", (f"Column {name} holds text{example}, which no model can take as it is: {ENCODE}, "
                                 f"or tick it under “Leave out these columns”.{leave_out}")
    if error.code == "missing":
        count = column.get("missing")
        amount = f"{count:,} missing values" if count else "missing values"
        return "preprocessing", (f"Column {name} has {amount}, and the chosen models cannot take gaps: {FILL}, or "
                                 f"tick it under “Leave out these columns”.{leave_out}")
    if error.code == "infinite":
        return "preprocessing", (f"Column {name} has infinite values: tick it under “Leave out these columns”, or "
                                 "fix the file and upload it again.")
    if error.code in ("target", "no_target"):
        return "target", error.message
    if error.code == "rows":
        return "cv", error.message
    return "dataset", error.message
