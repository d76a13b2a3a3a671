"""The suite's four tiers, derived from what each test asks for, and held to it while the test runs.

- unit: no database, no Redis, no processes, no network. `make test-fast` runs only these.
- integration: the database, real Redis and the channel layer, in-process ASGI; no child processes.
- system: real daphne, RQ workers, the monitor, supervisord, loky and Dask pools, faults and kill -9.
- browser: Chromium against a live stack.

A test's tier is the highest of what its fixtures need and any tier marker it carries
(`pytestmark = pytest.mark.system` for a module that starts processes by hand). The tier is not a label
to trust: a unit test that opens a socket, or a unit or integration test that starts a process, fails
with a message naming the tier it belongs in. Tests run tier by tier, cheapest first, so a broken unit
fails in seconds; within a tier pytest-randomly's shuffled order stands. `make test` ends with a table of
each tier's count and wall time, and writes every test's duration to .runwatch/test-durations.json.
"""

import json
import os
import time
from pathlib import Path

import pytest

TIERS = ("unit", "integration", "system", "browser")

# Fixtures that decide a tier. Anything that requests one of these (directly or through another fixture)
# is at least that tier.
NEEDS = {
    "browser": {"chromium", "browse"},
    "system": {"worker", "monitor", "daphne_server", "live_worker", "live_api", "live_media", "dask_cluster"},
    "integration": {"db", "transactional_db", "django_db_setup", "redis_client", "client", "admin_client",
                    "async_client", "rf_db", "live_server"},
}


def tier_of(item):
    names = set(item.fixturenames)
    derived = "unit"
    if names & NEEDS["browser"]:
        derived = "browser"
    elif names & NEEDS["system"]:
        derived = "system"
    elif names & NEEDS["integration"] or item.get_closest_marker("django_db"):
        derived = "integration"
    marked = [t for t in TIERS if item.get_closest_marker(t)]
    return max([derived, *marked], key=TIERS.index)


def pytest_configure(config):
    for tier, what in (
        ("unit", "no database, Redis, processes or network"),
        ("integration", "database, Redis, channel layer, in-process ASGI; no child processes"),
        ("system", "real daphne, RQ workers, monitor, supervisord, process pools, faults"),
        ("browser", "Chromium against a live stack"),
    ):
        config.addinivalue_line("markers", f"{tier}: {what} (tests/tiers.py)")
    config.stash[_results] = {}


_results = pytest.StashKey[dict]()


def pytest_itemcollected(item):
    tier = tier_of(item)
    # The marker lets `-m unit` select a tier; the user property carries the tier to xdist's controller,
    # which sees reports but not items.
    item.add_marker(tier)
    item.user_properties.append(("tier", tier))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    # After pytest-randomly's shuffle: a stable sort keeps the shuffled order inside each tier.
    items.sort(key=lambda item: TIERS.index(dict(item.user_properties)["tier"]))


# --- the guard ---------------------------------------------------------------------------------------

class TierBreach(Exception):
    pass


def _forbid(what, tier, should_be):
    def refuse(*args, **kwargs):
        raise TierBreach(f"a {tier}-tier test {what}; it belongs in the {should_be} tier "
                         f"(request the fixture that provides it, or mark it pytest.mark.{should_be})")
    return refuse


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    import pytest_socket

    tier = dict(item.user_properties)["tier"]
    saved = [(module, name, getattr(module, name)) for module, name in _STARTERS if hasattr(module, name)]
    if tier == "unit":
        # Unix sockets stay open to it: they are how a process talks to itself (asyncio's self-pipe).
        pytest_socket.disable_socket(allow_unix_socket=True)
    if tier in ("unit", "integration"):
        for module, name, _ in saved:
            setattr(module, name, _forbid("started a process", tier, "system"))
    try:
        yield
    finally:
        for module, name, original in saved:
            setattr(module, name, original)
        pytest_socket.enable_socket()


def _starters():
    import _posixsubprocess
    import subprocess

    # Every way Python starts a child: subprocess (its own reference to fork_exec, or posix_spawn),
    # multiprocessing and loky (fork_exec through multiprocessing.util, or os.fork).
    return [(subprocess, "_fork_exec"), (_posixsubprocess, "fork_exec"), (os, "fork"), (os, "posix_spawn"),
            (os, "posix_spawnp")]


_STARTERS = _starters()


# --- the summary -------------------------------------------------------------------------------------

def pytest_runtest_logreport(report):
    tier = dict(report.user_properties).get("tier")
    if tier is None:
        return
    results = _config.stash[_results]
    row = results.setdefault(tier, {"tests": set(), "failed": set(), "start": report.start, "stop": report.stop,
                                    "seconds": 0.0, "durations": {}})
    row["tests"].add(report.nodeid)
    if report.failed:
        row["failed"].add(report.nodeid)
    row["start"] = min(row["start"], report.start)
    row["stop"] = max(row["stop"], report.stop)
    row["seconds"] += report.duration
    row["durations"][report.nodeid] = row["durations"].get(report.nodeid, 0.0) + report.duration


_config = None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    global _config
    _config = session.config


def pytest_terminal_summary(terminalreporter, config):
    results = config.stash.get(_results, {})
    if not results or hasattr(config, "workerinput"):
        return
    rows = {tier: {"tests": len(row["tests"]), "failed": len(row["failed"]), "wall": row["stop"] - row["start"],
                   "seconds": row["seconds"]} for tier, row in results.items()}
    # scripts/test.sh runs the suite as two pytest runs (the cheap tiers on xdist workers, then the rest); the
    # second prints the tiers of both, from the file the first wrote.
    carry = os.environ.get("RUNWATCH_TIERS_CARRY")
    if carry:
        carried = Path(config.rootpath) / carry
        if carried.is_file():
            rows = {**json.loads(carried.read_text()), **rows}
        carried.parent.mkdir(parents=True, exist_ok=True)
        carried.write_text(json.dumps(rows))
    write = terminalreporter.write_line
    terminalreporter.section("tiers")
    write(f"{'tier':<12}{'tests':>7}{'failed':>8}{'wall':>10}{'test time':>11}")
    for tier in TIERS:
        row = rows.get(tier)
        if row:
            write(f"{tier:<12}{row['tests']:>7}{row['failed']:>8}{row['wall']:>9.0f}s{row['seconds']:>10.0f}s")
    durations = {nodeid: round(seconds, 3) for row in results.values() for nodeid, seconds in row["durations"].items()}
    out = Path(config.rootpath) / ".runwatch" / "test-durations.json"
    if out.parent.is_dir():
        out.write_text(json.dumps({"written": time.time(), "durations": durations}, indent=0, sort_keys=True))
