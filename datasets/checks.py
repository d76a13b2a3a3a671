"""The one validation of an uploaded CSV, for every way a dataset comes in: the upload page, the API, the admin.

Each refusal is a sentence a person can act on, and the same file gets the same sentence everywhere:
- over the size limit (settings.RUNWATCH["DATASET_MAX_UPLOAD_MB"]), checked first, before the file is read;
- unreadable: empty, binary, JSON, a bad encoding, ragged rows... (engine.files.read_csv, which runs read
  with too, so an accepted upload is one a run can load);
- too many columns (settings.RUNWATCH["DATASET_MAX_COLUMNS"]), before anything is profiled per column;
- no use for any run: no data rows, one column, too few rows to cross-validate (profiling.upload_problem).

The size limit is also enforced while the upload streams: FILE_UPLOAD_HANDLERS are the two handlers below,
which stop keeping a file's bytes once it passes the limit and hand on an `OversizedUpload` carrying the file's
real size and nothing else. The check above then refuses it with the same sentence as any other large file.
"""

import io

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import MemoryFileUploadHandler, TemporaryFileUploadHandler

from . import profiling
from engine.files import path_size, read_csv

MB = 1024 * 1024


def max_upload_mb():
    return settings.RUNWATCH.get("DATASET_MAX_UPLOAD_MB", 50)


def max_columns():
    return settings.RUNWATCH.get("DATASET_MAX_COLUMNS", 1000)


def _limit_bytes():
    return int(max_upload_mb() * MB)


def check_upload(upload):
    """The frame of an acceptable uploaded CSV; ValidationError with the one message if it is refused.

    `upload` is an open binary file (an UploadedFile, a FieldFile, a plain file); it is left at the start."""
    size = upload.size if isinstance(upload, UploadedFile) else path_size(upload)
    if size > _limit_bytes():
        raise ValidationError(f"The file is {size / MB:.1f} MB; the limit is {max_upload_mb()} MB.", code="too_large")
    frame, problem = read_csv(upload)
    if problem:
        raise ValidationError(problem, code="unreadable")
    # Before the profile: a wide file costs a pass per column there, and in every run after.
    if frame.shape[1] > max_columns():
        raise ValidationError(f"The file has {frame.shape[1]:,} columns; the limit is {max_columns():,}.",
                              code="too_many_columns")
    problem = profiling.upload_problem(frame)
    if problem:
        raise ValidationError(problem, code="unusable")
    return frame


# --- The size limit while the upload streams -------------------------------------------------------------


class OversizedUpload(UploadedFile):
    """What is left of a file that passed the size limit while streaming: its name and real size, no content."""

    def __init__(self, name, size, content_type=None):
        super().__init__(io.BytesIO(), name=name, content_type=content_type, size=size)


class _SizeLimit:
    """Mixed into Django's two storing handlers. Past the limit a file's bytes are no longer kept (those kept so
    far are dropped at once); the rest is still read, so the other fields arrive and the answer is a normal 400
    with the size message rather than a reset connection. The parser's counter keeps counting, so the refusal
    can give the file's real size."""

    def new_file(self, *args, **kwargs):
        self.oversized = False
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data, start):
        if not self._storing():
            return super().receive_data_chunk(raw_data, start)
        if not self.oversized and start + len(raw_data) > _limit_bytes():
            self.oversized = True
            self.file.close()  # a temporary file is deleted as it closes
        return None if self.oversized else super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        if self._storing() and self.oversized:
            return OversizedUpload(self.file_name, file_size, self.content_type)
        return super().file_complete(file_size)

    def _storing(self):
        return True


class LimitedMemoryFileUploadHandler(_SizeLimit, MemoryFileUploadHandler):
    def _storing(self):
        return self.activated  # when not activated, the next handler (the temporary file) stores the file


class LimitedTemporaryFileUploadHandler(_SizeLimit, TemporaryFileUploadHandler):
    pass
