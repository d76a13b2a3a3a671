"""How the engine ends early. Messages are written for the person watching the run, not for a developer."""


class RunError(Exception):
    """The run cannot go on; `message` says why in plain words, `step` which step failed."""

    def __init__(self, message, step=None):
        super().__init__(message)
        self.message = message
        self.step = step


class DataError(RunError):
    """The data cannot be used as the spec says (empty file, constant target, text with no encoder…).

    `code` and `column` say which problem it is ("text", "missing", "infinite"... and the column it is in),
    so the wizard can say the same in its own words and point at its own field."""

    def __init__(self, message, step="validate_data", code=None, column=None):
        super().__init__(message, step)
        self.code = code
        self.column = column


class Cancelled(Exception):
    """The reporter said the run should stop; raised between fits and epochs. Results so far are kept."""


class LimitExceeded(RunError):
    """The run reached its wall-clock or memory limit; `message` says which, `hint` how to raise it."""

    def __init__(self, message, hint, step=None):
        super().__init__(message, step)
        self.hint = hint
