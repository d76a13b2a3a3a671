"""The login throttle (config/login_throttle.py) against a live daphne: /login/, /admin/login/ and the API's
token share one set of counters, per account and per client address, and X-Forwarded-For cannot reset them."""

import itertools

import httpx
import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client

from config.client_ip import client_ip

LIMIT = settings.AXES_FAILURE_LIMIT
THROTTLED = "Too many failed logins for this account or from this address. Try again in"
forged = (f"203.0.113.{n}" for n in itertools.count(1))
TIMEOUT = 60  # a busy 2-core machine: the answer is what is tested, not its speed


def login_form(base_url, path, username, password, forwarded=None):
    """One POST of a login form through daphne, as a browser does it: GET for the CSRF cookie, then POST."""
    with httpx.Client(base_url=base_url, timeout=TIMEOUT) as browser:
        browser.get(path).raise_for_status()
        headers = {"X-Forwarded-For": forwarded} if forwarded else {}
        return browser.post(path, headers=headers, data={
            "username": username, "password": password, "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            "next": "/",
        })


def token(base_url, username, password, forwarded=None):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return httpx.post(f"{base_url}/api/v1/auth/token/", json={"username": username, "password": password},
                      headers=headers, timeout=TIMEOUT)


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_it_refuses_the_right_password_after_thirty_wrong_ones(daphne_server, staff, path):
    answers = [login_form(daphne_server.url, path, "sam", f"guess-{n}").status_code for n in range(30)]
    # The form again with its error, until the failure that reaches the limit locks the account.
    assert answers[:LIMIT - 1] == [200] * (LIMIT - 1)
    assert set(answers[LIMIT - 1:]) == {429}
    refused = login_form(daphne_server.url, path, "sam", "sam-password-1")
    assert refused.status_code == 429
    assert THROTTLED in refused.text
    assert int(refused.headers["Retry-After"]) > 0
    assert "sessionid" not in refused.cookies


def test_it_does_not_let_forged_forwarded_for_headers_reset_the_count(daphne_server, owner):
    for _ in range(30):
        login_form(daphne_server.url, "/login/", "alice", "wrong", forwarded=next(forged))
    refused = login_form(daphne_server.url, "/login/", "alice", "alice-password-1", forwarded=next(forged))
    assert refused.status_code == 429 and THROTTLED in refused.text
    # The header was ignored: every failure was counted against the one real address.
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"127.0.0.1"}


def test_it_shares_the_counters_with_the_api_token(daphne_server, owner):
    for _ in range(LIMIT):
        login_form(daphne_server.url, "/login/", "alice", "wrong")
    refused = token(daphne_server.url, "alice", "alice-password-1", forwarded=next(forged))
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith(THROTTLED)
    assert int(refused.headers["Retry-After"]) > 0


def test_it_locks_the_token_endpoint_after_wrong_passwords(daphne_server, owner):
    answers = [token(daphne_server.url, "alice", "wrong", forwarded=next(forged)).status_code for _ in range(LIMIT)]
    assert answers == [400] * LIMIT
    refused = token(daphne_server.url, "alice", "alice-password-1")
    assert refused.status_code == 429
    assert login_form(daphne_server.url, "/login/", "alice", "alice-password-1").status_code == 429


def test_it_locks_an_address_that_guesses_many_accounts(daphne_server, owner, outsider):
    for n in range(LIMIT):
        login_form(daphne_server.url, "/login/", f"nobody-{n}", "wrong")
    # No failure was ever counted against alice herself: the address is what is locked.
    assert login_form(daphne_server.url, "/login/", "alice", "alice-password-1").status_code == 429


def test_it_lets_the_right_password_in_below_the_limit(daphne_server, owner):
    for _ in range(LIMIT - 1):
        assert login_form(daphne_server.url, "/login/", "alice", "wrong").status_code == 200
    accepted = login_form(daphne_server.url, "/login/", "alice", "alice-password-1")
    assert accepted.status_code == 302 and "sessionid" in accepted.cookies


def test_it_shows_staff_the_lockouts_and_lifts_one_when_its_row_is_deleted(daphne_server, owner, staff):
    for _ in range(LIMIT):
        login_form(daphne_server.url, "/login/", "alice", "wrong")
    admin = Client()
    admin.force_login(staff)
    listing = admin.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and "alice" in listing.content.decode()
    attempt = AccessAttempt.objects.get(username="alice")
    deleted = admin.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert login_form(daphne_server.url, "/login/", "alice", "alice-password-1").status_code == 302


def test_it_reads_the_client_from_trusted_proxies_only(settings):
    meta = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "198.51.100.7, 192.0.2.1"}
    settings.TRUSTED_PROXIES = 0
    assert client_ip(meta) == "10.0.0.2"  # no proxy configured: the header is the client's own words
    settings.TRUSTED_PROXIES = 1
    assert client_ip(meta) == "192.0.2.1"  # what our one proxy saw; the client's "198.51.100.7" is ignored
    settings.TRUSTED_PROXIES = 2
    assert client_ip(meta) == "198.51.100.7"
    settings.TRUSTED_PROXIES = 1
    assert client_ip({**meta, "HTTP_X_FORWARDED_FOR": "not-an-address"}) == "10.0.0.2"
    assert client_ip({"REMOTE_ADDR": "10.0.0.2"}) == "10.0.0.2"
