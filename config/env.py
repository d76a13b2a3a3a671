"""Reading settings from the environment, with an error that names the variable and what it must be.

Not django-environ: checked at 0.14.0, its bool cast turns any unknown word into False (DEBUG=ture is silently
off) and its float cast of "abc" raises "could not convert string to float: ''", naming neither the
variable nor the fix. Database URLs are read by dj-database-url (config/settings.py).
"""

import os

from django.core.exceptions import ImproperlyConfigured


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_float(name, default):
    value = os.environ.get(name)
    try:
        return float(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None
