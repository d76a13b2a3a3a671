"""Stored files (uploaded CSVs, model bundles, promoted models) go only through Django's storage API, so they
live wherever STORAGES["default"] says: MEDIA_ROOT on one machine, an S3-compatible bucket when the web
processes and the workers run on different machines. Nothing opens a media path.

A stored file is named by its storage name (a FileField's `.name`, or Run.model_file). The engine is
Django-free and works on local files: `download` fetches a stored file into a temporary directory of the
process that needs it (runs.worker.execution), and `store` uploads what the engine wrote. Temporary directories are
never shared between processes.
"""

import os
import shutil

from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.core.files.storage import default_storage

from engine.files import read_csv

CHUNK = 1024 * 1024


def _storage(storage):
    return default_storage if storage is None else storage


def exists(name, storage=None):
    """Whether `name` is a stored file. A name that cannot be in the storage (an absolute path recorded by an
    old single-machine install, say) is not."""
    if not name:
        return False
    try:
        return _storage(storage).exists(name)
    except (SuspiciousFileOperation, ValueError):
        return False


def open_stored(name, storage=None):
    """The stored file `name`, open for binary reading; FileNotFoundError if there is none."""
    if not name:
        raise FileNotFoundError("No file name was recorded.")
    try:
        return _storage(storage).open(name, "rb")
    except SuspiciousFileOperation:
        raise FileNotFoundError(f"{name} is not a stored file.") from None


def delete(name, storage=None):
    """Delete the stored file `name`, if there is one (a storage ignores a name it does not hold)."""
    if exists(name, storage):
        _storage(storage).delete(name)


def download(name, path, storage=None):
    """Copy the stored file `name` to the local file `path`; FileNotFoundError if there is no such file."""
    with open_stored(name, storage) as source, open(path, "wb") as target:
        shutil.copyfileobj(source, target, CHUNK)
    return path


def store(path, name, storage=None):
    """Upload the local file `path` as `name`; returns the name it was stored under (a storage may change it
    to keep names unique)."""
    with open(path, "rb") as f:
        return _storage(storage).save(name, File(f, name=os.path.basename(name)))


def read_stored_csv(field):
    """(frame, None) or (None, why not) for a FileField's stored CSV, read with the one CSV reader."""
    if not field:
        return None, "The file is missing."
    try:
        with open_stored(field.name, field.storage) as f:
            return read_csv(f)
    except FileNotFoundError:
        return None, "The file is missing."
