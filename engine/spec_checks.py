"""Small checks the spec validator is built from. Each takes any JSON value and never raises."""

import difflib
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


def unknown_keys(errors, path, value, allowed, elsewhere=None):
    """Refuses the keys this level of the spec does not have, naming each with the closest known one.

    Without it a misspelt key ("fold" for "folds") would simply vanish from the normalised spec, and the
    user would get a run that is not the one they asked for, with nothing said. `elsewhere` maps fields of
    other levels to where they belong ({"folds": "cv"}), for the key written one level too high."""
    elsewhere = elsewhere or {}
    if not isinstance(value, dict):
        return
    for key in value:
        if key in allowed:
            continue
        where = f"{path}.{show(key, quote=False)}" if path else show(key, quote=False)
        close = close_match(key, [*allowed, *elsewhere])
        if close in elsewhere:
            home = elsewhere[close]
            hint = f'Did you mean {close!r}? It belongs inside "{home}": {{"{home}": {{"{close}": …}}}}.'
        elif close:
            hint = f"Did you mean {close!r}?"
        else:
            hint = f"Known fields here: {', '.join(allowed)}."
        errors.add(where, f"Unknown field {show(key)}. {hint}")
        if errors.truncated:
            return


def close_match(key, known):
    """The known name `key` is most likely a misspelling of, or None."""
    # Only short keys are compared: difflib's cost grows with the key's length, and a hostile key is long.
    if not isinstance(key, str) or len(key) > 60:
        return None
    found = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return found[0] if found else None
