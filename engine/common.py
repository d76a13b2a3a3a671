"""What every runner shares: running a named step, loading and validating data, capturing fit warnings."""

import contextlib
import platform
import time
import warnings

from .spec import branches, variants

from . import datasets, pipeline
from .errors import Cancelled, RunError


@contextlib.contextmanager
def step(reporter, name, timings):
    """Report a step as running, then completed, or failed with the error's message.

    A cancelled step is left as it is: the run's Stopped status says what happened to it.
    """
    reporter.step(name, "running")
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        yield
    except Cancelled:
        raise
    except RunError as e:
        e.step = e.step or name
        if e.step != name:
            reporter.step(name, "completed")
        reporter.step(e.step, "failed", e.message)
        raise
    except Exception as e:
        reporter.step(name, "failed", f"{type(e).__name__}: {e}")
        raise
    timings[name] = round(time.perf_counter() - started, 4)
    # CPU seconds of the whole process (reporter threads included): steadier than wall time on a busy machine.
    timings[f"{name}_cpu"] = round(time.process_time() - cpu_started, 4)
    reporter.step(name, "completed")


def library_versions():
    import joblib
    import numpy
    import pandas
    import scipy
    import sklearn

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "pandas": pandas.__version__,
        "joblib": joblib.__version__,
    }


def load_and_validate(spec, reporter, timings, dataset_path=None):
    """The load_data and validate_data steps of the CV and training runners. Returns the validated Data."""
    with step(reporter, "load_data", timings):
        reporter.progress("Loading data", progress=0.0, finished=0, total=0)
        data = datasets.load(spec["dataset"], spec.get("target", "target"), dataset_path)
        reporter.record(data_hash=data.sha256, library_versions=library_versions())
        reporter.log("info", f"Loaded {data.source} (SHA-256 {data.sha256[:12]}…)")
    with step(reporter, "validate_data", timings):
        chains = [(name, [s["name"] for s in steps]) for name, steps in branches(spec)]
        nan_ok = all(pipeline.allows_nan(v) for v in variants(spec))
        for message in datasets.validate(data, spec, chains, allow_nan=nan_ok):
            reporter.warn(message)
        reporter.log(
            "info",
            f"{data.n_rows} rows, {data.n_features} features"
            + (f" ({len(data.text_columns)} text)" if data.text_columns else "")
            + f", target {data.target!r}",
        )
    return data


def build_for(data, steps, variant, spec):
    return pipeline.build(
        steps,
        variant,
        task=spec["task"],
        seed=spec["seed"],
        text_columns=data.text_columns,
        numeric_columns=[c for c in data.feature_names if c not in data.text_columns],
    )


class FitWarnings:
    """Collects the warnings scikit-learn raises during fits (ConvergenceWarning…) and logs each distinct one
    once per variant, so a warning repeated on every fold does not flood the log."""

    def __init__(self, reporter):
        self.reporter = reporter
        self.seen = set()

    @contextlib.contextmanager
    def capture(self, **context):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        self.report([f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught], **context)

    def report(self, texts, **context):
        """Logs warnings caught elsewhere (in a child process, as text), with the same once-per-variant rule."""
        for text in texts:
            key = (context.get("branch"), context.get("variant"), text)
            if key not in self.seen:
                self.seen.add(key)
                self.reporter.log("warning", text, **context)
