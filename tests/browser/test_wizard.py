"""A new user in real Chromium: uploads a CSV, designs an experiment with two preprocessing branches and a
parameter grid through every wizard step (going back once), launches it, and watches it complete."""

from django.contrib.auth.models import User
from playwright.sync_api import expect

from runs.models import Run
from tests.browser.conftest import screenshot

CSV = "size,colour,weight,label\n" + "".join(
    f"{i % 17},{['red', 'green', 'blue'][i % 3]},{(i * 7) % 23},{int(i % 17 > 8)}\n" for i in range(90))


def test_it_uploads_designs_launches_and_completes(worker, browse, daphne_server, tmp_path):
    newbie = User.objects.create_user("newbie", "newbie@example.org", "newbie-password-1")
    page = browse(newbie)
    base = daphne_server.url
    csp = []  # every page on the way must pass the Content-Security-Policy (no inline script or handler)
    page.on("console", lambda m: "Content Security Policy" in m.text and csp.append(m.text))

    page.goto(f"{base}/datasets/")
    expect(page.locator(".empty")).to_contain_text("No datasets yet")
    expect(page.locator("nav a[aria-current=page]")).to_have_text("Datasets")
    uploads = []
    page.on("request", lambda r: uploads.append(r.resource_type) if r.url.endswith("/datasets/upload/") else None)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,y\n1,2,3\n4,5,6,7\n")
    page.set_input_files("#id_file", str(bad))
    page.click("button:has-text('Upload')")
    expect(page.locator("#upload-error")).to_have_text(
        "Row 3 has 4 fields, expected 3 like the header. Check for an unquoted delimiter or a missing value on that line.")
    assert page.url == f"{base}/datasets/"  # the refusal was swapped into this page
    path = tmp_path / "fruit.csv"
    path.write_text(CSV)
    page.set_input_files("#id_file", str(path))
    page.click("button:has-text('Upload')")  # sent by upload.js with a progress bar
    page.wait_for_url(f"{base}/datasets/*/")
    expect(page.locator("h1")).to_have_text("fruit.csv")
    assert uploads == ["xhr", "xhr"]  # upload.js sent both, with progress events
    expect(page.locator(".kind-categorical")).to_have_count(1)
    screenshot(page, "dataset-preview")

    page.click("text=Design an experiment")
    expect(page.locator("input[name=source]:checked")).to_have_value(f"csv:{newbie.datasets.get().pk}")
    page.click("button[value=next]")

    page.wait_for_load_state("load")  # htmx and wizard.js listen from DOMContentLoaded on
    page.select_option("#id_target", "label")  # wizard.js picks the guessed task
    expect(page.locator("input[name=task][value=classification]")).to_be_checked()
    expect(page.locator("#target-facts")).to_contain_text("Guessed task: classification")  # htmx, live
    page.click("button[value=next]")

    page.select_option("#id_imputer", "median")
    page.check("input[name=encode][value=encode]")
    page.fill("#id_b0_name", "standard")
    page.select_option("#id_b0_scaler", "standard_scaler")
    page.click("button[value=add_branch]")
    page.fill("#id_b1_name", "minmax")
    expect(page.locator("#id_b0_name")).to_have_value("standard")
    page.select_option("#id_b1_scaler", "minmax_scaler")
    page.click("button[value=next]")
    page.wait_for_load_state("load")  # wizard.js opens a model's parameters when it is ticked

    page.check("#id_use_LogisticRegression")
    expect(page.locator("#id_LogisticRegression__C")).to_be_visible()
    page.fill("#id_LogisticRegression__C", "0.1, 1")
    page.fill("#id_LogisticRegression__max_iter", "500")
    screenshot(page, "wizard-models")
    page.click("button[value=next]")

    page.fill("#id_folds", "3")
    page.click("button[value=next]")
    page.click("button[value=back]")  # back to the folds: still 3
    expect(page.locator("#id_folds")).to_have_value("3")
    page.click("button[value=next]")

    expect(page.locator(".runner-training")).to_be_hidden()
    page.check("input[name=runner][value=cv]")
    page.click("button[value=next]")

    expect(page.locator(".spec-readable")).to_contain_text("12 + 1 refit (2 branches × 2 variants × 3 folds, then")
    expect(page.locator(".spec-readable")).to_contain_text("standard: Fill missing values")
    expect(page.locator(".estimate")).to_contain_text("from the catalog's cost model")
    page.fill("#id_name", "Fruit, two scalers")
    screenshot(page, "wizard-review")
    page.click("button[value=launch]")

    page.wait_for_url(f"{base}/runs/*/")
    run = Run.objects.get(owner=newbie)
    assert run.experiment.name == "Fruit, two scalers" and run.total_fits == 12
    expect(page.locator("#run-badge")).to_have_text("Completed", timeout=90_000)
    assert not page.errors and not csp
