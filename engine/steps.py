"""The steps each runner goes through, in order: (name, label)."""

STEPS = {
    "cv": [
        ("load_data", "Load data"),
        ("validate_data", "Validate data"),
        ("cross_validate", "Cross-validate"),
        ("refit_best", "Refit best"),
        ("export", "Export"),
    ],
    "training": [
        ("load_data", "Load data"),
        ("validate_data", "Validate data"),
        ("train", "Train"),
        ("export", "Export"),
    ],
    "evaluation": [
        ("load_bundle", "Load model"),
        ("load_data", "Load data"),
        ("validate_data", "Validate data"),
        ("evaluate", "Evaluate"),
    ],
}


def steps_for(spec):
    return STEPS[spec["runner"]]
