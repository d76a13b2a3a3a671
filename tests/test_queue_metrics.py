"""django-rq's Prometheus endpoint, /admin/rq/metrics/: what docs/operations.md tells operators to scrape."""

import pytest

URL = "/admin/rq/metrics/"


@pytest.fixture
def token(settings):
    settings.RQ_API_TOKEN = "scrape-token-for-the-test"
    return settings.RQ_API_TOKEN


def test_it_serves_queue_metrics_to_a_scraper_with_the_token(client, token, db):
    response = client.get(URL, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert 'rq_jobs{queue="default",status="queued"}' in response.content.decode()


def test_it_serves_queue_metrics_to_staff(client, staff):
    client.force_login(staff)
    response = client.get(URL)

    assert response.status_code == 200
    # The series a scraper reads, one per state of the default queue, not just the metric's help line.
    lines = response.content.decode().splitlines()
    for status in ("queued", "started", "finished", "failed"):
        series = f'rq_jobs{{queue="default",status="{status}"}} '
        assert any(line.startswith(series) for line in lines), (series, lines)


def test_it_refuses_anyone_else(client, outsider, token):
    assert client.get(URL).status_code == 401
    assert client.get(URL, headers={"Authorization": "Bearer a-guess"}).status_code == 401
    client.force_login(outsider)
    assert client.get(URL).status_code == 401


def test_it_accepts_no_token_when_none_is_configured(client, settings, db):
    settings.RQ_API_TOKEN = ""
    assert client.get(URL, headers={"Authorization": "Bearer "}).status_code == 401
