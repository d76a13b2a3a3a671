"""Small checks the spec validator is built from. Each takes any JSON value and never raises."""

import math

MAX_ERROR_PATHS = 50
SHOWN_LENGTH = 40


class Errors(dict):
    """{dotted path: [messages]}. A hostile spec can have millions of faults; the first few help as much."""

    truncated = False

    def add(self, path, message):
        path = path or "spec"
        if path not in self and len(self) >= MAX_ERROR_PATHS:
            self.truncated = True
            return
        messages = self.setdefault(path, [])
        if message not in messages:  # shared steps are checked once per branch
            messages.append(message)

    def result(self):
        errors = dict(self)
        if self.truncated:
            errors.setdefault("spec", []).append(f"More errors not shown; fix these {MAX_ERROR_PATHS} first.")
        return errors


def show(value, quote=True):
    """A user's value for a message or a path: short, whatever its size."""
    text = repr(value) if quote else str(value)
    return text if len(text) <= SHOWN_LENGTH else text[: SHOWN_LENGTH - 1] + "…"


def number(value):
    """1000000.0 -> "1000000", 0.5 -> "0.5": ranges read as people write them."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def is_number(value):
    if isinstance(value, bool):
        return False
    # Any int is finite; math.isfinite would raise OverflowError on one too large for a float (10**400).
    return isinstance(value, int) or isinstance(value, float) and math.isfinite(value)


def as_int(errors, path, value, lo, hi, message=None):
    """A whole number in [lo, hi], or None with an error."""
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(path, message or "Must be a whole number.")
        return None
    if not lo <= value <= hi:
        errors.add(path, message or f"Must be between {lo} and {hi}.")
        return None
    return value


def as_text(errors, path, value, max_length, message):
    """Non-empty text of at most `max_length` characters that a JSON column can store, or None with an error."""
    if not isinstance(value, str) or not value:
        errors.add(path, message)
        return None
    if len(value) > max_length:
        errors.add(path, f"At most {max_length} characters.")
        return None
    if "\x00" in value:
        errors.add(path, "Must not contain NUL characters.")
        return None
    return value


def is_scalar(value):
    return value is None or isinstance(value, (str, bool)) or is_number(value)
