"""A variant's out-of-fold diagnostics, as the results page, compare and the API read them: the stored folds
(runs.models.FoldDiagnostic, made by engine.diagnostics in the fit children) and what follows from them, the
normalised confusion matrix and the mean curves with their ± one std band. One home for these numbers, so
every reader shows the same ones.

Only the one variant asked for is loaded (an indexed query of its folds), so the page costs the same at 100
variants as at 2.
"""

from engine.diagnostics import mean_curve

from runs.models import FoldDiagnostic


def for_variant(run, branch, variant):
    """{"kind", "folds": [per fold, fold order], "confusion", "roc", "pr", "calibration", "importance"} of one
    variant, or None when none of its folds has diagnostics (runs before they existed, training runs)."""
    rows = list(FoldDiagnostic.objects.filter(run=run, branch=branch, variant=variant)
                .order_by("fold").values_list("fold", "data"))
    folds = [{"fold": fold, **data} for fold, data in rows if data]
    if not folds:
        return None
    kind = folds[0].get("kind")
    out = {"branch": branch, "variant": variant, "kind": kind, "folds": folds,
           "importance": _importance([f.get("importance") for f in folds])}
    if kind == "classification":
        out["confusion"] = _confusion(folds)
        out["curve_of"] = folds[0].get("curve_of", "")
        out["roc"] = _curves(folds, "roc", "fpr", "tpr", start=0.0, score="auc")
        out["pr"] = _curves(folds, "pr", "recall", "precision", score="ap")
        calibrated = [f for f in folds if f.get("calibration")]
        out["calibration"] = calibrated and [{"fold": f["fold"], **f["calibration"]} for f in calibrated]
    return out


def normalised(matrix):
    """Each row (a true class) as fractions of its rows, as confusion_matrix(normalize="true"); an empty row
    stays zeros."""
    out = []
    for row in matrix:
        total = sum(row)
        out.append([round(v / total, 6) if total else 0.0 for v in row])
    return out


def _confusion(folds):
    matrices = [f["confusion"] for f in folds if f.get("confusion")]
    if not matrices:
        return None
    size = len(matrices[0])
    total = [[sum(m[i][j] for m in matrices if len(m) == size) for j in range(size)] for i in range(size)]
    return {"labels": folds[0]["labels"], "counts": total, "normalised": normalised(total),
            "by_fold": [{"fold": f["fold"], "counts": f["confusion"], "normalised": normalised(f["confusion"])}
                        for f in folds if f.get("confusion")]}


def _curves(folds, name, x_key, y_key, start=None, score=None):
    curves = [(f["fold"], f[name]) for f in folds if f.get(name)]
    if not curves:
        return None
    scores = [c.get(score) for _, c in curves if c.get(score) is not None]
    mean = sum(scores) / len(scores) if scores else None
    std = (sum((s - mean) ** 2 for s in scores) / len(scores)) ** 0.5 if scores else None
    return {
        "x_key": x_key, "y_key": y_key, "score": score, "score_mean": mean, "score_std": std,
        "by_fold": [{"fold": fold, "x": c[x_key], "y": c[y_key], "score": c.get(score),
                     "base_rate": c.get("base_rate")} for fold, c in curves],
        "mean": mean_curve([c for _, c in curves], x_key, y_key, start=start),
    }


def _importance(per_fold):
    """Mean importance per feature over the folds that have it, with its std, best first."""
    per_fold = [p for p in per_fold if p]
    if not per_fold:
        return None
    values = {}
    for p in per_fold:
        for feature, value in zip(p["features"], p["values"]):
            if value is not None:
                values.setdefault(feature, []).append(value)
    rows = []
    for feature, vs in values.items():
        m = sum(vs) / len(vs)
        rows.append({"feature": feature, "mean": m, "std": (sum((v - m) ** 2 for v in vs) / len(vs)) ** 0.5,
                     "folds": len(vs)})
    rows.sort(key=lambda r: -r["mean"])
    return {"source": per_fold[0]["source"], "features": rows}
