"""The settings the live-path benchmarks run Runwatch with: as deployed (docs/deployment.md), DEBUG off.

With DEBUG on, Django does work on the live path that production never does: every SQL statement of the
reporter passes through CursorDebugWrapper (its text and time kept, a log record made), and the templates the
fragment stream renders are compiled for debug pages. These benchmarks compare Runwatch with a floor and a
peer that have no debug mode, so by default they measure the deployed configuration. --debug measures it as
`make run` serves it (DEBUG=1), for comparison.

Call use() before Django is set up: it sets this process's environment, which every child (daphne, the
emitter, the other tree's children) inherits.
"""

import os
import secrets


def add_argument(parser):
    parser.add_argument("--debug", action="store_true",
                        help="run Runwatch with DEBUG=1, as `make run` serves it (default: DEBUG=0, as deployed)")


def use(debug=False):
    """Returns the line the report prints about the settings."""
    os.environ["DEBUG"] = "1" if debug else "0"
    if debug:
        return "Settings: DEBUG=1, as `make run` serves Runwatch"
    # A throwaway key: tokens live in the database, and nothing signed outlives the benchmark.
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ["ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    # Plain HTTP and WebSocket on localhost: there is no TLS proxy in front to redirect to.
    os.environ["SECURE_SSL_REDIRECT"] = "0"
    return "Settings: DEBUG=0, as deployed (docs/deployment.md); --debug measures DEBUG=1, as `make run` serves it"
