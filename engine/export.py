"""The model bundle: one zip file holding the fitted pipeline (model.joblib) and what produced it
(metadata.json: spec, metrics, library versions, data hash). One file, so one SHA-256 covers both and a
download is complete; the metadata can be read without unpickling anything.

Only load bundles this installation wrote (joblib is pickle): the evaluation runner checks the SHA-256
recorded on the run that exported it before it loads one.
"""

import datetime
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np

from .files import file_sha256

from .common import library_versions
from .errors import RunError

FORMAT = "runwatch-bundle/1"


@dataclass
class Bundle:
    model: object
    metadata: dict
    path: Path
    sha256: str

    def predict(self, X):
        return self.model.predict(X)


def metadata(spec, data, best, **extra):
    return {
        "format": FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "spec": spec,
        "task": spec["task"],
        "metric": spec["metric"],
        "target": data.target,
        "features": list(data.feature_names),
        "text_features": list(data.text_columns),
        "takes_dataframe": data.frame is not None,
        "classes": None,  # filled in from the fitted model by write_bundle
        "branch": best["branch"],
        "variant": {
            "index": best["variant"],
            "description": best["description"],
            "estimator": best["estimator"],
            "params": best["params"],
        },
        "metrics": best.get("means", {}),
        "data": {"source": data.source, "sha256": data.sha256, "rows": data.n_rows},
        "library_versions": library_versions(),
        **extra,
    }


def write_bundle(workdir, model, meta):
    """Write <workdir>/<workdir name>-model.zip; returns {"path", "sha256"}."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    classes = getattr(model, "classes_", None)
    if classes is not None:
        meta["classes"] = [_plain(c) for c in classes]
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    path = workdir / f"{workdir.name}-model.zip"
    partial = path.with_suffix(".zip.part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as z:
        z.writestr("model.joblib", buffer.getvalue())
        z.writestr("metadata.json", json.dumps(meta, indent=2, default=_json_default))
    partial.replace(path)  # a reader never sees half a bundle
    return {"path": str(path), "sha256": file_sha256(path)}


def read_metadata(path):
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("metadata.json"))


def load_bundle(path, sha256=None):
    """Load an exported bundle; with `sha256`, refuse a file that is not the one that was exported."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"The model bundle {path.name} is missing.", step="load_bundle")
    actual = file_sha256(path)
    if sha256 and actual != sha256:
        raise RunError(
            f"The model bundle {path.name} has changed since it was exported (its SHA-256 does not match).",
            step="load_bundle",
        )
    try:
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read("metadata.json"))
            model = joblib.load(io.BytesIO(z.read("model.joblib")))
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise RunError(f"The model bundle {path.name} is not readable: {e}", step="load_bundle") from e
    return Bundle(model, meta, path, actual)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (Path, datetime.datetime)):
        return str(value)
    return value


def _json_default(value):
    plain = _plain(value)
    return str(value) if plain is value else plain
