"""An anonymous Chromium session watches a run live through its share link, against daphne, a real RQ worker
and the monitor; the owner's Revoke closes its socket within 5 s, and the link then answers 404."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from playwright.sync_api import expect

from runs.control import cancel_run, launch_run
from sharing.models import ShareLink
from tests.browser.test_run_page import LONG_SPEC
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def in_thread(fn, *args):
    """Playwright's sync API keeps an event loop in this thread, and revoke() sends to the channel layer with
    async_to_sync, which refuses such a thread: run it in another, with its own database connection."""
    def call():
        try:
            return fn(*args)
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()


def test_it_lets_an_anonymous_viewer_watch_live_until_the_link_is_revoked(worker, monitor, chromium,
                                                                          daphne_server, owner):
    run = launch_run(owner, spec=LONG_SPEC, name="Shared live")
    link, token = ShareLink.create_for(run, owner)
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})  # no cookie: anonymous
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{daphne_server.url}/s/{token}/")
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        wait_for(lambda: page.locator(".fold-row").count() >= 3, timeout=60, message="live fold scores")
        expect(page.locator("#run-badge")).to_have_text("Running")
        # Read-only: no Stop (even once a live status fragment brought one), no nav to the owner's things.
        expect(page.locator("#stop-form")).to_be_hidden()
        expect(page.locator("a[href^='/experiments/'], a[href^='/datasets/'], a[href^='/models/']")).to_have_count(0)
        expect(page.locator("a.back")).to_have_count(0)  # no "All runs"
        seen = page.locator(".fold-row").count()
        wait_for(lambda: page.locator(".fold-row").count() > seen, timeout=60, message="more folds, live")

        assert in_thread(link.revoke)
        # The bound: the socket is closed, and the page says so, within 5 s of the revoke.
        expect(page.locator("#conn-error")).to_be_visible(timeout=5_000)
        expect(page.locator("#conn")).to_have_attribute("data-state", "offline")

        assert page.goto(f"{daphne_server.url}/s/{token}/").status == 404
        assert page.goto(f"{daphne_server.url}/s/{token}/results/").status == 404
        assert not errors
    finally:
        context.close()
        run.refresh_from_db()
        if run.is_active:
            cancel_run(run, by=owner)
