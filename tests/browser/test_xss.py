"""In Chromium: payloads in a run's name, a live log line pushed over the socket, and a CSV's column names and
cells show as text and run nothing.

The content security policy would block an injected inline script anyway, so "no alert" alone proves little:
the page must also hold no element made from a payload and report no CSP violation (a blocked injection is
still an escaping bug). tests/test_escaping.py checks the same payloads server-side on every page.
"""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from playwright.sync_api import expect

from datasets.forms import DatasetUploadForm
from runs.control import launch_run
from tests.browser.test_run_page import WATCH_SPEC, off_loop
from tests.helpers import reporter_for

pytestmark = pytest.mark.django_db(transaction=True)

PAYLOADS = ('<script>window.__xss=1;alert(1)</script>', '"><img src=x onerror="window.__xss=1;alert(1)">')

WATCH = """
window.__xss = 0;
window.__violations = [];
document.addEventListener("securitypolicyviolation", e => window.__violations.push(e.violatedDirective));
"""


def open_watched(browse, user):
    page = browse(user, init_script=WATCH)
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    return page


def assert_nothing_ran(page, where):
    injected = page.evaluate("""() => ({
        flag: window.__xss,
        violations: window.__violations,
        images: document.querySelectorAll('img[src="x"]').length,
        scripts: [...document.scripts].filter(s => s.textContent.includes("__xss")).length,
    })""")
    assert injected == {"flag": 0, "violations": [], "images": 0, "scripts": 0}, f"{where}: {injected}"
    assert page.dialogs == [] and page.errors == [], f"{where}: {page.dialogs} {page.errors}"


def test_it_runs_no_payload_on_the_run_page_or_the_dataset_page(browse, daphne_server, owner):
    run = launch_run(owner, spec=WATCH_SPEC, name=PAYLOADS[0])
    run.mark_running("w1")
    page = open_watched(browse, owner)
    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("h1")).to_contain_text(PAYLOADS[0])

    def emit():
        reporter = reporter_for(run)
        for payload in PAYLOADS:
            reporter.log("warning", f"live {payload}")

    off_loop(emit)  # the engine's reporter: stored, then pushed to the page over the socket
    for payload in PAYLOADS:
        expect(page.locator("#log-lines .log-line", has_text=f"live {payload}")).to_have_count(1)
    assert_nothing_ran(page, "the run page")

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*PAYLOADS, "label"])
    for i in range(6):
        writer.writerow([PAYLOADS[0], PAYLOADS[1], "yes" if i % 2 else "no"])
    form = DatasetUploadForm({"name": PAYLOADS[1]}, {"file": SimpleUploadedFile("xss.csv", out.getvalue().encode())})
    assert form.is_valid(), form.errors
    dataset = form.save(owner)
    try:
        page.goto(f"{daphne_server.url}/datasets/{dataset.pk}/")
        expect(page.locator("h1")).to_contain_text(PAYLOADS[1])
        expect(page.get_by_text(PAYLOADS[0]).first).to_be_visible()
        assert_nothing_ran(page, "the dataset page")
    finally:
        dataset.file.delete(save=False)
