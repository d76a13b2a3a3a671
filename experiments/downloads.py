"""The one model download: every bundle (a run's export, a promoted model; page or API) is served here.

The file is read through the storage (datasets.storage: MEDIA_ROOT or an object store), hashed on the
server before a byte is sent, and the very file object that was hashed is the one streamed, so a file
swapped in the storage between the check and the send cannot slip through. A file whose SHA-256
differs from the recorded one is refused with 409 and a message saying so: the client never receives a wrong
file under a right checksum.
"""

import os

from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from engine.files import file_sha256
from datasets.storage import open_stored

CORRUPTED = ("The stored file does not match its recorded SHA-256 checksum, so it was not sent. "
             "It may be corrupted or changed where it is stored; re-run or re-export the model.")
NO_CHECKSUM = "No SHA-256 checksum was recorded for this file, so it cannot be verified and was not sent."


def serve_verified(request, name, sha256, filename=None, storage=None):
    """An attachment response for the stored file `name` if its content hashes to `sha256`; 404 if it is
    missing, 409 if not. `storage` is the default storage unless given (a FileField's own).

    The refusal is JSON (`{"detail": ...}`) for API requests and a small page otherwise.
    """
    try:
        handle = open_stored(name, storage)  # FileResponse closes it once sent
    except FileNotFoundError:
        raise Http404("The file is missing.") from None
    try:
        actual = file_sha256(handle)  # leaves the handle at the start, ready to stream
    except Exception:
        handle.close()
        raise
    if not sha256 or actual != sha256.lower():
        handle.close()
        return _refusal(request, CORRUPTED if sha256 else NO_CHECKSUM, expected=sha256, actual=actual)
    response = FileResponse(handle, as_attachment=True, filename=filename or os.path.basename(name),
                            content_type="application/octet-stream")
    response["X-Model-SHA256"] = actual
    return response


def _wants_json(request):
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


def _refusal(request, message, expected, actual):
    if _wants_json(request):
        return JsonResponse({"detail": message, "expected_sha256": expected, "actual_sha256": actual}, status=409)
    html = render_to_string("models/download_refused.html",
                            {"message": message, "expected": expected, "actual": actual}, request=request)
    return HttpResponse(html, status=409)
