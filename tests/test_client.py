"""runwatch_client: the documented Python client and its command line, against daphne and a real worker."""

import hashlib
import json
import random

import pytest
from rest_framework.authtoken.models import Token

from runwatch_client import Runwatch, RunwatchError, main
from tests.api.conftest import live_api, live_media, live_worker  # noqa: F401 (fixtures)
from tests.test_ws_token import MANY_EVENTS_SPEC

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def rw(live_api, owner):
    return Runwatch(live_api.url, Runwatch.get_token(live_api.url, "alice", "alice-password-1"))


def test_it_launches_streams_across_disconnects_and_downloads(rw, live_worker, tmp_path):
    run = rw.launch(spec=MANY_EVENTS_SPEC, name="From the client")
    assert run["status"] == "queued" and run["name"] == "From the client"
    rng = random.Random()
    stream = rw.events(run["id"])
    seqs = []
    for event in stream:
        seqs.append(event["seq"])
        if rng.random() < 0.15:
            stream.connection.close()  # the client notices, reconnects with after=<last seq>
    finished = rw.run(run["id"])
    assert finished["status"] == "completed"
    assert seqs == list(range(1, finished["last_seq"] + 1))
    assert stream.connects > 1

    path = rw.download_model(run["id"], str(tmp_path / "model.joblib"))
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == finished["model_sha256"]
    assert rw.results(run["id"])["leaderboard"][0]["rank"] == 1
    with pytest.raises(RunwatchError) as ended:
        rw.cancel(run["id"])
    assert ended.value.status == 409 and "already completed" in ended.value.detail


def test_it_cancels_and_waits(rw, experiment):
    run = rw.launch(experiment=experiment.pk)
    assert rw.cancel(run["id"])["status"] == "stopped"
    assert rw.wait(run["id"], timeout=5)["status"] == "stopped"


def test_it_reports_refusals(rw, live_api, outsider, experiment):
    with pytest.raises(RunwatchError) as bad:
        rw.launch(spec={"models": []})
    assert bad.value.status == 400
    theirs = Runwatch(live_api.url, Token.objects.get_or_create(user=outsider)[0].key)
    run = rw.launch(experiment=experiment.pk)
    with pytest.raises(RunwatchError) as hidden:
        theirs.cancel(run["id"])
    assert hidden.value.status == 404
    with pytest.raises(RunwatchError) as forbidden:
        list(theirs.events(run["id"]))
    assert forbidden.value.status == 4404  # told apart from a missing run no more
    with pytest.raises(RunwatchError) as no_model:
        rw.download_model(run["id"], "/dev/null")
    assert no_model.value.status == 404


def test_it_works_from_the_command_line(live_api, live_worker, owner, experiment, capsys, tmp_path):
    assert main(["--url", live_api.url, "token", "alice", "--password", "alice-password-1"]) == 0
    token = capsys.readouterr().out.strip()
    assert token == Token.objects.get(user=owner).key

    cli = ["--url", live_api.url, "--token", token]
    assert main([*cli, "launch", "--experiment", str(experiment.pk), "--follow"]) == 0
    out = capsys.readouterr().out
    run_id = int(out.split()[1])
    assert "JOB_COMPLETED" in out and out.strip().endswith(f"Run {run_id} completed")

    model = tmp_path / "m.joblib"
    assert main([*cli, "download", str(run_id), "-o", str(model)]) == 0 and model.stat().st_size > 0
    assert main([*cli, "cancel", str(run_id)]) == 1
    assert "409" in capsys.readouterr().err

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(experiment.spec))
    assert main([*cli, "launch", "--spec", str(spec)]) == 0
    queued = int(capsys.readouterr().out.split()[1])
    assert main([*cli, "cancel", str(queued)]) == 0
    assert main([*cli, "events", str(queued)]) == 0
    assert capsys.readouterr().out.strip().endswith("stopped")


def test_it_speaks_the_servers_names():
    """The client stands alone (no Django), so it spells out the protocol's names; they must stay the server's."""
    import runwatch_client
    from runs import events

    assert (runwatch_client.JOB_METRICS, runwatch_client.STREAM_END) == (events.JOB_METRICS, events.STREAM_END)
