"""The way to the admin and the height of a run's admin page: staff find the admin in the navigation, and a
run's change page shows only its newest records inline, collapsed, with a link to all of them."""

import re

import pytest
from django.urls import reverse

from runs.control import launch_run
from runs.models import FoldMetric, LogEntry

pytestmark = pytest.mark.django_db

ADMIN_LINK = f'<a href="{reverse("admin:index")}">Admin</a>'


def test_it_links_the_admin_in_the_navigation_for_staff_only(client, owner, staff):
    client.force_login(staff)
    page = client.get(reverse("runs:list")).content.decode()
    nav = page[page.index('<ul class="topnav">'):page.index("</ul>", page.index('<ul class="topnav">'))]
    assert ADMIN_LINK in nav

    client.force_login(owner)
    page = client.get(reverse("runs:list")).content.decode()
    assert page.count('<ul class="topnav">') == 1 and ADMIN_LINK not in page
    assert reverse("admin:index") not in page


def test_it_shows_only_the_newest_ten_fits_of_a_30_fit_run_collapsed(client, owner, outsider, staff, experiment):
    run = launch_run(owner, experiment=experiment)
    FoldMetric.objects.bulk_create(
        FoldMetric(run=run, variant=1 + i // 5, fold=1 + i % 5, metric="accuracy", value=0.9, seq=i,
                   variant_description=f"fit number {i}") for i in range(1, 31))
    LogEntry.objects.bulk_create(LogEntry(run=run, seq=i, level="info", message=f"Line {i}") for i in range(1, 31))
    url = reverse("admin:runs_run_change", args=[run.pk])

    client.force_login(staff)
    response = client.get(url)

    assert response.status_code == 200
    html = response.content.decode()
    fits = re.findall(r'<tr class="form-row[^"]*"\s+id="fold_metrics-\d+">', html)
    logs = re.findall(r'<tr class="form-row[^"]*"\s+id="logs-\d+">', html)
    assert len(fits) == 10 and len(logs) == 10
    assert "fit number 30<" in html and "fit number 21<" in html and "fit number 20<" not in html
    # Both inlines start collapsed (a <details> Django opens on a click).
    assert re.search(r'<fieldset class="module collapse"[^>]*aria-labelledby="fold_metrics-heading">\s*<details>', html)
    assert re.search(r'<fieldset class="module collapse"[^>]*aria-labelledby="logs-heading">\s*<details>', html)
    fold_list = reverse("admin:runs_foldmetric_changelist") + f"?run__id__exact={run.pk}"
    assert re.search(rf'id="fold_metrics-rest">Newest 10 of 30 shown · <a href="{re.escape(fold_list)}">all 30 '
                     rf'fold metrics</a>', html)
    assert len(client.get(fold_list).context["cl"].result_list) == 30

    for who in (owner, outsider):
        client.force_login(who)
        response = client.get(url)
        assert response.status_code == 302 and "login" in response["Location"]
