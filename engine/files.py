"""Reading the files users bring: the one CSV reader and the one SHA-256 of a file, for uploads, runs and
model bundles alike. Plain Python and pandas, no Django, so the engine uses them too.

The reader decodes and sniffs the file itself before pandas sees it, so an upload and a run read a file the
same way, and each common mistake gets a message a person can act on instead of a tokenizer error:
binary or JSON content, UTF-16 or Latin-1 text, a semicolon or tab delimiter, duplicate column names and a
row with the wrong number of fields. Cells are read as data only: a cell like "=SUM(A1)" stays that text.
"""

import codecs
import csv
import hashlib
import io
import json
import os
import re

DELIMITERS = ",;\t|"
# C0 controls other than tab and line breaks, and C1 controls: never in a text CSV, common in binary data.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
BINARY = "This is not a CSV file: it holds binary data. Upload a text file with comma-separated values."


def file_sha256(source):
    """SHA-256 of a file, given its path or an open binary file (read from the start, left at the start)."""
    if hasattr(source, "read"):
        source.seek(0)
        digest = hashlib.file_digest(source, "sha256")
        source.seek(0)
        return digest.hexdigest()
    with open(source, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _read_bytes(source):
    if hasattr(source, "read"):
        source.seek(0)
        try:
            return source.read()
        finally:
            source.seek(0)
    with open(source, "rb") as f:
        return f.read()


def decode(raw):
    """(text, encoding name) or (None, why not). UTF-8 first; UTF-16 only with its byte-order mark; Latin-1
    only when the bytes cannot be UTF-8. Text holding control characters is refused (binary data)."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        refused = ("This is not a readable CSV file: it starts like UTF-16 text but {}. Save it as UTF-8 and "
                   "try again.")
        try:
            text = raw.decode("utf-16")
        except UnicodeDecodeError:
            return None, refused.format("is not valid UTF-16")
        # Two stray bytes can look like a byte-order mark; real UTF-16 CSV decodes to lines of values.
        if not any(c in text for c in "\n" + DELIMITERS) or CONTROL.search(text):
            return None, refused.format("does not decode to lines of values")
        return text, "UTF-16"
    if b"\x00" in raw[:65536]:
        return None, BINARY
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    else:
        # Control bytes are valid UTF-8 but never in a text CSV (4 KB of b"\x01" would read as one long column
        # name).
        return (None, BINARY) if CONTROL.search(text) else (text, "UTF-8")
    text = raw.decode("latin-1")
    if CONTROL.search(text):
        return None, ("The file is neither UTF-8 nor Latin-1 text (it holds control characters). Save it as "
                      "UTF-8 and try again.")
    return text, "Latin-1"


def sniff_delimiter(text):
    """The delimiter that splits the header line most; comma on a tie, or when nothing splits it."""
    first_line = text.split("\n", 1)[0]
    counts = {d: first_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return "," if counts[best] == 0 or counts[","] >= counts[best] else best


def read_csv(source):
    """(frame, None) or (None, why it cannot be read): the one CSV reader, for uploads and for runs.

    `source` is a path or an open binary file (read from the start, left at the start)."""
    # Imported here: web processes import this module for file_sha256 and path_size, and pandas (with numpy)
    # would add a second to every django.setup() (tests/test_light_setup.py).
    import pandas as pd

    raw = _read_bytes(source)
    if not raw:
        return None, "The file is empty (0 bytes)."
    text, encoding = decode(raw)
    if text is None:
        return None, encoding
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            json.loads(stripped)
            return None, "This is JSON, not CSV. Export the data as comma-separated values with a header row."
        except ValueError:
            pass
    if not stripped:
        return None, "The file has no columns: it holds nothing but blank lines."
    delimiter = sniff_delimiter(stripped)
    problem = _check_rows(stripped, delimiter)
    if problem:
        return None, problem
    try:
        # Every cell is read as data (no converters, no evaluation); pandas only infers numbers and missing values.
        frame = pd.read_csv(io.StringIO(stripped), sep=delimiter, skip_blank_lines=True, engine="c")
    except pd.errors.EmptyDataError:
        return None, "The file has no columns: it holds nothing but blank lines."
    except (pd.errors.ParserError, ValueError) as e:
        return None, f"This is not a readable CSV file: {str(e).splitlines()[0]}"
    if frame.shape[1] == 0:
        return None, "The file has no columns."
    frame.columns = [str(c) for c in frame.columns]
    frame.attrs["encoding"], frame.attrs["delimiter"] = encoding, DELIMITER_NAMES[delimiter]
    return frame, None


def _check_rows(text, delimiter):
    """Duplicate or blank-only headers and ragged rows, found before pandas renames or pads them silently."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
        names = [name.strip() for name in header]
        seen, duplicates = set(), []
        for name in names:
            if name in seen and name not in duplicates:
                duplicates.append(name)
            seen.add(name)
        if duplicates:
            shown = ", ".join(repr(d) for d in duplicates[:5])
            return f"Column names must be unique; the header repeats {shown}. Rename the columns and try again."
        for row in reader:
            if not row:
                continue  # a blank line, which pandas skips too
            if len(row) != len(header):
                line = reader.line_num
                return (f"Row {line} has {len(row)} fields, expected {len(header)} like the header. "
                        "Check for an unquoted delimiter or a missing value on that line.")
    except csv.Error as e:
        return f"This is not a readable CSV file: {e} (line {reader.line_num})."
    return None


def path_size(source):
    if hasattr(source, "read"):
        source.seek(0, os.SEEK_END)
        size = source.tell()
        source.seek(0)
        return size
    return os.path.getsize(source)
