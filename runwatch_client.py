"""A small Python client for the Runwatch API, and a command-line example of using it.

    from runwatch_client import Runwatch

    rw = Runwatch("http://127.0.0.1:8000", token=Runwatch.get_token("http://127.0.0.1:8000", "alice", "pw"))
    run = rw.launch(spec={"dataset": {"kind": "builtin", "name": "iris"}, "models": ["LogisticRegression"]})
    for event in rw.events(run["id"]):          # live; survives disconnects; ends when the run ends
        print(event["seq"], event["type"], event["data"].get("message", ""))
    rw.download_model(run["id"], "model.joblib")  # checks the SHA-256 the server sends
    rw.cancel(other_run_id)                     # raises RunwatchError (409) if it already ended

Command line (the token comes from --token or RUNWATCH_TOKEN; `token` prints one):

    python runwatch_client.py --url http://127.0.0.1:8000 token alice
    python runwatch_client.py launch --experiment 3 --follow
    python runwatch_client.py launch --spec spec.json --follow
    python runwatch_client.py events 42 --after 10
    python runwatch_client.py cancel 42
    python runwatch_client.py download 42 -o model.joblib

How streaming works: the client opens ws://.../ws/runs/<id>/?after=<seq> and offers the subprotocols
"runwatch.v1" and "token.<key>" (the token stays out of URLs and logs). Every event carries a per-run `seq`
with no gaps. When the connection drops, the client reconnects (with backoff) passing the last seq it
holds as `after`, so it receives everything it missed exactly once; any duplicate is dropped by seq. The
server ends the stream with STREAM_END after the run's terminal event. Close codes 4401 (bad token) and
4404 (no such run, or someone else's) are final and raised as RunwatchError. The message types and their
payloads: docs/websocket-protocol.md.
Uses httpx and websockets (both in the project's dependencies).
"""

import argparse
import hashlib
import json
import os
import sys
import time

import httpx
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

# The protocol's names (runs/events.py defines them on the server; tests/test_client.py holds the two equal).
# This file stands alone, with only httpx and websockets, so it spells them out rather than import Django.
JOB_METRICS = "JOB_METRICS"
STREAM_END = "STREAM_END"
FINAL_CLOSE_CODES = (4401, 4403, 4404)  # 4403: servers before 4404 covered other users' runs too

class RunwatchError(Exception):
    def __init__(self, status, detail):
        self.status, self.detail = status, detail
        super().__init__(f"{status}: {detail}")


class Runwatch:
    def __init__(self, url, token, timeout=30.0):
        self.url = url.rstrip("/")
        self.token = token
        self.http = httpx.Client(base_url=f"{self.url}/api/v1", timeout=timeout,
                                 headers={"Authorization": f"Token {token}"})

    @staticmethod
    def get_token(url, username, password):
        credentials = {"username": username, "password": password}
        response = httpx.post(f"{url.rstrip('/')}/api/v1/auth/token/", json=credentials)
        return _json(response)["token"]

    # --- REST ----------------------------------------------------------------------------------------

    def request(self, method, path, **kwargs):
        return _json(self.http.request(method, path, **kwargs))

    def launch(self, experiment=None, spec=None, name=None):
        """Submit a run from an experiment id or an inline spec; returns the run."""
        body = {k: v for k, v in {"experiment": experiment, "spec": spec, "name": name}.items() if v is not None}
        return self.request("POST", "/runs/", json=body)

    def run(self, run_id):
        return self.request("GET", f"/runs/{run_id}/")

    def cancel(self, run_id):
        """Returns the run (stopped, or cancelling until the current fit ends); RunwatchError 409 if it ended."""
        return self.request("POST", f"/runs/{run_id}/cancel/")

    def wait(self, run_id, timeout=None):
        """Block until the run ends (or `timeout` seconds pass); returns the run."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 60 if deadline is None else max(0, min(60, deadline - time.monotonic()))
            run = self.request("GET", f"/runs/{run_id}/wait/", params={"timeout": left}, timeout=left + 30)
            if run["is_terminal"] or (deadline is not None and time.monotonic() >= deadline):
                return run

    def results(self, run_id):
        return self.request("GET", f"/runs/{run_id}/results/")

    def download_model(self, run_id, path):
        """Save the run's model bundle to `path`; raises RunwatchError if its SHA-256 does not match."""
        digest = hashlib.sha256()
        with self.http.stream("GET", f"/runs/{run_id}/model/") as response:
            if response.status_code != 200:
                response.read()
                _json(response)
            expected = response.headers.get("X-Model-SHA256", "")
            with open(path, "wb") as f:
                for chunk in response.iter_bytes():
                    digest.update(chunk)
                    f.write(chunk)
        if expected and digest.hexdigest() != expected:
            os.remove(path)
            raise RunwatchError(200, f"Checksum mismatch: got {digest.hexdigest()}, expected {expected}")
        return path

    # --- Events --------------------------------------------------------------------------------------

    def events(self, run_id, after=0, max_retries=20):
        """Yield the run's events in seq order, live, until the run ends. See EventStream."""
        return EventStream(self, run_id, after, max_retries)


class EventStream:
    """Iterates over a run's events over WebSocket, reconnecting with `after` when the connection drops.

    `connection` is the current socket (None between connections) and `connects` counts connections made.
    """

    def __init__(self, client, run_id, after=0, max_retries=20):
        self.client, self.run_id, self.last_seq, self.max_retries = client, run_id, after, max_retries
        self.connection, self.connects, self.ended = None, 0, False

    def ws_url(self):
        base = self.client.url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return f"{base}/ws/runs/{self.run_id}/?after={self.last_seq}"

    def __iter__(self):
        failures = 0
        while not self.ended:
            try:
                with connect(self.ws_url(), subprotocols=["runwatch.v1", f"token.{self.client.token}"],
                             open_timeout=10, max_size=2**24) as self.connection:
                    self.connects += 1
                    failures = 0
                    for frame in self.connection:
                        message = json.loads(frame)
                        if message.get("type") == STREAM_END:
                            self.ended = True
                            break
                        if message.get("seq", 0) <= self.last_seq:
                            continue  # already seen before a reconnect
                        self.last_seq = message["seq"]
                        yield message
            except ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd else None
                if code in FINAL_CLOSE_CODES:
                    raise RunwatchError(code, e.rcvd.reason or "refused") from None
            except (OSError, InvalidStatus, TimeoutError) as e:
                failures += 1
                if failures > self.max_retries:
                    raise RunwatchError(0, f"Could not reconnect: {e}") from None
            finally:
                self.connection = None
            if not self.ended and failures:
                time.sleep(min(10.0, 0.2 * 2**failures))  # back off while the server is unreachable
            # Otherwise reconnect at once: the server replays from last_seq, and ends with STREAM_END
            # straight away if the run finished while we were away.


def _json(response):
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text[:500]}
    if response.status_code >= 400:
        raise RunwatchError(response.status_code, body.get("detail", body) if isinstance(body, dict) else body)
    return body


# --- Command line ----------------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description="Runwatch API client")
    parser.add_argument("--url", default=os.environ.get("RUNWATCH_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("RUNWATCH_TOKEN"))
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="print the API token of a user")
    token.add_argument("username")
    token.add_argument("--password", default=os.environ.get("RUNWATCH_PASSWORD"))
    launch = commands.add_parser("launch", help="submit a run")
    source = launch.add_mutually_exclusive_group(required=True)
    source.add_argument("--experiment", type=int)
    source.add_argument("--spec", help="a JSON file with the run spec")
    launch.add_argument("--name")
    launch.add_argument("--follow", action="store_true", help="stream its events until it ends")
    events = commands.add_parser("events", help="stream a run's events")
    events.add_argument("run", type=int)
    events.add_argument("--after", type=int, default=0)
    cancel = commands.add_parser("cancel", help="stop a run")
    cancel.add_argument("run", type=int)
    download = commands.add_parser("download", help="download a run's model bundle")
    download.add_argument("run", type=int)
    download.add_argument("-o", "--output", default=None)
    args = parser.parse_args(argv)

    try:
        if args.command == "token":
            import getpass

            print(Runwatch.get_token(args.url, args.username, args.password or getpass.getpass()))
            return 0
        if not args.token:
            parser.error("give --token or set RUNWATCH_TOKEN (`token USERNAME` prints one)")
        rw = Runwatch(args.url, args.token)
        if args.command == "launch":
            spec = json.load(open(args.spec)) if args.spec else None
            run = rw.launch(experiment=args.experiment, spec=spec, name=args.name)
            print(f"Run {run['id']} {run['status']}")
            if args.follow:
                follow(rw, run["id"])
        elif args.command == "events":
            follow(rw, args.run, args.after)
        elif args.command == "cancel":
            print(f"Run {args.run} {rw.cancel(args.run)['status']}")
        elif args.command == "download":
            print(rw.download_model(args.run, args.output or f"run-{args.run}-model.joblib"))
    except RunwatchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def follow(rw, run_id, after=0):
    for event in rw.events(run_id, after=after):
        data = event["data"]
        text = data.get("message") or data.get("status") or data.get("label") or ""
        if event["type"] == JOB_METRICS:
            text = f"{data.get('variant_description', '')} fold {data.get('fold')}: {data.get('primary')}"
        print(f"{event['seq']:>5} {event['type']:<16} {text}")
    print(f"Run {run_id} {rw.run(run_id)['status']}")


if __name__ == "__main__":
    sys.exit(main())
