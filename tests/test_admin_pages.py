"""The way to the admin and the height of a run's admin page: staff find the admin in the navigation, and a
run's change page shows only its newest records inline, collapsed, with a link to all of them."""

import pytest
from django.urls import reverse


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
