"""The Content-Security-Policy header is sent, and the real pages pass it in Chromium: htmx, its WebSocket
extension, run.js, the admin and the API docs load and work with no violation."""

import pytest
from django.conf import settings
from playwright.sync_api import expect

from runs.control import launch_run
from runs.models import Run
from tests.helpers import session_key_for, wait_for
from tests.runwork import wait_for_status

# Recorded by the page itself, from before its first script runs.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture
def open_page(chromium, daphne_server):
    """open_page(user or None) -> a page that records CSP violations, from the console and from the DOM."""
    contexts = []

    def open_(user):
        context = chromium.new_context(viewport={"width": 1400, "height": 1000})
        if user is not None:
            context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session_key_for(user),
                                  "url": daphne_server.url}])
        context.add_init_script(RECORD_VIOLATIONS)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.console_violations = []
        page.on("console", lambda m: "Content Security Policy" in m.text and page.console_violations.append(m.text))
        return page

    yield open_
    for context in contexts:
        context.close()


def violations(page):
    return page.console_violations + page.evaluate("window.__cspViolations")


def visit(page, url):
    response = page.goto(url)
    assert response.status == 200, url
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'self'" in policy
    page.wait_for_load_state("load")
    return response


def test_it_runs_the_live_run_page_without_a_csp_violation(worker, open_page, daphne_server, owner, iris_spec):
    run = launch_run(owner, spec=iris_spec, name="Under policy")
    page = open_page(owner)
    # Watched live: the WebSocket connects and htmx swaps the fragments in as the run goes.
    visit(page, f"{daphne_server.url}/runs/{run.pk}/")
    wait_for_status(run, Run.Status.COMPLETED, timeout=120)
    expect(page.locator("#run-badge")).to_have_text("Completed", timeout=30_000)

    # The log filters (run.js) still work, and typing Enter in the search does not submit the form.
    page.fill("#log-search", "fold")
    page.press("#log-search", "Enter")
    assert page.url == f"{daphne_server.url}/runs/{run.pk}/"

    assert violations(page) == []


def test_it_serves_the_other_pages_without_a_csp_violation(open_page, daphne_server, owner, staff, experiment):
    run = Run.objects.create(owner=owner, experiment=experiment, name="Listed", spec=experiment.spec)
    pages = [
        (None, "/login/"),
        (owner, "/"),
        (owner, f"/runs/{run.pk}/"),
        (owner, "/api/v1/docs/"),
        (staff, "/admin/"),
        (staff, f"/admin/runs/run/{run.pk}/change/"),
    ]
    for user, path in pages:
        page = open_page(user)
        visit(page, daphne_server.url + path)
        if path == "/api/v1/docs/":
            # Swagger UI builds the page from its script: it only gets here if the script was allowed.
            wait_for(lambda: page.locator(".swagger-ui .info").count(), timeout=30, message="the API docs")
        assert violations(page) == [], path


def test_it_reports_a_violation_when_there_is_one(open_page, daphne_server, owner):
    # The detector above is not blind: an inline script on our page is blocked and recorded.
    page = open_page(owner)
    visit(page, daphne_server.url + "/")
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<img src=x onerror=\"window.ran=1\">')")

    wait_for(lambda: violations(page), timeout=10, message="the violation to be reported")
    assert page.evaluate("window.ran") is None
