"""The run stream through a share link (/ws/share/<token>/...), against the real ASGI application and the real
Redis channel layer: it streams one run read-only, refuses revoked, expired and guessed links alike (4404), and
a revoke closes an open socket."""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from config.asgi import application
from runs import events
from runs.control import launch_run
from runs.models import append_event
from sharing.models import ShareLink
from tests.test_consumers import TIMEOUT, receive_json

pytestmark = pytest.mark.django_db(transaction=True)

GUESSED = "x" * 43


def socket(path):
    return WebsocketCommunicator(application, path, headers=[(b"origin", b"http://127.0.0.1")])


@pytest.fixture
def run(owner, experiment):
    run = launch_run(owner, experiment=experiment)
    run.mark_running("w1")
    return run


def test_it_streams_the_run_to_an_anonymous_viewer_with_the_link(owner, run):
    _, token = ShareLink.create_for(run, owner)

    async def scenario():
        comm = socket(f"/ws/share/{token}/?after=2")
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert connected
        await database_sync_to_async(append_event)(run, events.JOB_PROGRESS, {"progress": 0.5, "message": "half"})
        message = await receive_json(comm)
        assert (message["seq"], message["type"], message["run"]) == (3, "JOB_PROGRESS", run.pk)
        await comm.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize("form", ["", "fragments/"])
def test_it_refuses_revoked_expired_and_guessed_links_alike(owner, run, form):
    revoked, revoked_token = ShareLink.create_for(run, owner)
    revoked.revoke()
    expired, expired_token = ShareLink.create_for(run, owner)
    ShareLink.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    async def scenario():
        for token in (GUESSED, revoked_token, expired_token):
            comm = socket(f"/ws/share/{token}/{form}")
            await comm.connect(timeout=TIMEOUT)
            closed = await comm.receive_output(timeout=TIMEOUT)
            assert closed == {"type": "websocket.close", "code": 4404}, token

    async_to_sync(scenario)()


def test_it_closes_an_open_socket_when_the_link_is_revoked(owner, run):
    link, token = ShareLink.create_for(run, owner)

    async def scenario():
        comm = socket(f"/ws/share/{token}/fragments/?after=2")
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert connected
        await comm.receive_from(timeout=TIMEOUT)  # the cursor: it is up to date
        await database_sync_to_async(link.revoke)()
        closed = await comm.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": 4404}

    async_to_sync(scenario)()


def test_it_streams_nothing_of_another_run_of_the_owner(owner, run, experiment):
    other = launch_run(owner, experiment=experiment)
    _, token = ShareLink.create_for(run, owner)

    async def scenario():
        comm = socket(f"/ws/share/{token}/?after=2")
        await comm.connect(timeout=TIMEOUT)
        await database_sync_to_async(append_event)(other, events.JOB_LOG, {"level": "info", "message": "other"})
        await database_sync_to_async(append_event)(run, events.JOB_LOG, {"level": "info", "message": "mine"})
        message = await receive_json(comm)
        assert (message["run"], message["data"]["message"]) == (run.pk, "mine")
        await comm.disconnect()

    async_to_sync(scenario)()
