"""Real Chromium (Playwright) against daphne, logged in with a session cookie made by Django itself."""

import os
from pathlib import Path

import pytest
from django.conf import settings

from tests.helpers import ROOT, session_key_for

ALLOW = "DJANGO_ALLOW_ASYNC_UNSAFE"

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait for their condition up to this long (Playwright's default is 5 s): on a loaded 2-core
    # machine a page can take longer than that to settle, and waiting costs nothing when it is quick.
    expect.set_options(timeout=20_000)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}; `make test` installs it (apt-get install chromium).")
    # Playwright's sync API keeps an asyncio loop marked as running in this thread, so Django would refuse
    # the tests' own ORM calls. Allow them here, but keep the worker and daphne child processes strict.
    # Module scope, not session: the loop and this variable must be gone before the next test module
    # (async_to_sync in the consumer tests, `check --deploy` in the settings tests).
    previous_env = os.environ.get(ALLOW)
    os.environ[ALLOW] = "true"  # tests.helpers.child_env keeps it out of the child processes
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous_env is None:
            os.environ.pop(ALLOW, None)
        else:
            os.environ[ALLOW] = previous_env


@pytest.fixture
def browse(chromium, daphne_server):
    """browse(user) -> a fresh page logged in as `user` on the daphne server; pages record errors."""
    contexts = []

    def open_page(user, viewport=None, init_script=None):
        context = chromium.new_context(viewport=viewport or {"width": 1400, "height": 1000})
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session_key_for(user),
                              "url": daphne_server.url}])
        if init_script:
            context.add_init_script(init_script)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        return page

    yield open_page
    for context in contexts:
        context.close()


def screenshot(page, name):
    """Saves a full-page screenshot in test-artifacts/ (git-ignored). Tests never write tracked files:
    `make screenshot` copies the README's picture from here on purpose."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
