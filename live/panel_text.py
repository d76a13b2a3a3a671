"""Texts of the run page's step panel that are built from events as well as from the run (live/fragments.py
renders them): the fits in flight, and the stop rule's latest decision."""

from engine.spec import branches, variants as all_variants

from runs import formatting

IN_FLIGHT_SUMMARY = 4  # variants named in the one-line summary; the list below names them all


def in_flight_text(fits):
    """FITS_IN_FLIGHT's fits as the page says them: "4 fits running: RF depth 8 folds 2–3, ..." and one line
    per variant with where its fits run. None when nothing runs."""
    if not fits:
        return None
    groups = []
    for fit in fits:  # in spec order, so one variant's fits are next to each other
        if not groups or (groups[-1]["branch"], groups[-1]["variant"]) != (fit["branch"], fit["variant"]):
            groups.append({"branch": fit["branch"], "variant": fit["variant"], "label": fit["label"],
                           "folds": [], "workers": []})
        groups[-1]["folds"].append(fit["fold"])
        if fit["worker"] not in groups[-1]["workers"]:
            groups[-1]["workers"].append(fit["worker"])
    for group in groups:
        group["folds"] = formatting.numbers(group["folds"], "fold")
        group["workers"] = ", ".join(group["workers"])
    named = [f"{g['label']} {g['folds']}" for g in groups[:IN_FLIGHT_SUMMARY]]
    if len(groups) > IN_FLIGHT_SUMMARY:
        named.append(f"{len(groups) - IN_FLIGHT_SUMMARY} more")
    count = len(fits)
    return {"count": count, "head": f"{count} fit{'s' if count != 1 else ''} running", "summary": ", ".join(named),
            "groups": groups}


def pruned_from_run(run):
    """The stop rule's line: how many variants it pruned, and its latest decision in words. None without one."""
    pruned = [p for p in run.pruned or [] if isinstance(p, dict)]
    if not pruned:
        return None
    try:
        variants = len(branches(run.spec)) * len(all_variants(run.spec))
    except (KeyError, TypeError):  # a spec snapshot from before a field existed: the count alone
        variants = None
    return {"count": len(pruned), "variants": variants, "message": pruned[-1].get("message", "")}


def pruned_from_event(data):
    """STOP_RULE's data (runs/events.py) as the same line."""
    return {"count": data.get("pruned_variants", 0), "variants": data.get("variants"),
            "message": data.get("message", "")}
